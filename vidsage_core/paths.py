"""Where VidSage reads and writes, in one place.

Every path is derived from the repository root so notebooks never use ``../data``; each can be
overridden with an environment variable (papermill runs notebooks from other directories).
"""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("VIDSAGE_DATA", ROOT / "data"))
# The embedded default: real YouTube-8M 2018 video-level shards (see data/yt8m/SOURCES.md).
YT8M = Path(os.environ.get("VIDSAGE_YT8M", DATA / "yt8m"))
YT8M_2018_GLOB = str(YT8M / "video_level_2018" / "*.tfrecord")
VOCABULARY = YT8M / "vocabulary.csv"
RESULTS = Path(os.environ.get("VIDSAGE_RESULTS", ROOT / "results"))
RUNS = RESULTS / "runs"
FIGURES = Path(os.environ.get("VIDSAGE_FIGURES", ROOT / "figures"))
RESOURCES = Path(__file__).resolve().parent / "resources"


def relative(text: str | os.PathLike | None) -> str | None:
    """``text`` with this machine's absolute results, figures and repository paths made portable.

    Paths under ``RESULTS`` become ``results/...``, under ``FIGURES`` ``figures/...`` and under
    ``ROOT`` relative to the repository root, wherever they occur in the string (a provenance
    sentence, a config value, a notebook output). Anything else, e.g. the user's own ``--data``
    argument, is left as given. What the artifact writes into ``results/`` goes through this, so
    no file there names the checkout or the machine that produced it.
    """
    if text is None:
        return None
    s = os.fspath(text)
    for base, name in ((RESULTS, "results"), (FIGURES, "figures"), (ROOT, ".")):
        for b in dict.fromkeys((str(base), str(Path(base).resolve()))):
            s = s.replace(b + os.sep, "" if name == "." else name + os.sep)
            if s == b:
                s = name
    return s
