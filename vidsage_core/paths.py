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
