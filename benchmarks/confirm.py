"""Confirmation on held-out videos: the artifact's Table 2 and label-efficiency runs on other data.

Issue 10 asks that every choice made on the embedded sample's validation bucket be confirmed on
the 14,794 real YouTube-8M videos of ``../shared/data/yt8m/video_level_2018_tuning/``, which no
choice was made on, and that what was measured there be reported. This command runs exactly the
artifact's configuration (``pipeline.artifact_config``: both protocols, every baseline, the
label fractions, the random-init ablation) on those videos through ``pipeline.run_if_missing``,
then renders the same tables and summary as notebook 05 (``tables.table2``,
``tables.label_efficiency``, ``narrative.summary_table2``) into ``results/confirmation/``.
Nothing here chooses anything: it only reports.

    python -m benchmarks.confirm --data ../shared/data/yt8m/video_level_2018_tuning/ --seeds 1

It is not part of ``./reproduce.sh``: the tuning videos are never embedded in the default run.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

from vidsage_core import paths

# As given, relative to the repository root the command runs from, so provenance names no machine.
DEFAULT_DATA = "../shared/data/yt8m/video_level_2018_tuning/"


def confirm(data: str, seeds: int, out_dir: Path, workers: int, device: str = "auto",
            run_dir: Path | None = None, smoke: bool = False) -> str:
    """Run the artifact's configuration on ``data`` and write its tables; returns the summary.

    Args:
        data: held-out TFRecords (directory, file or glob), recorded as given.
        seeds: number of seeds.
        out_dir: where ``table2``, ``label_efficiency`` (``.md`` / ``.csv``) and ``summary.md`` go.
        workers: worker processes of the run (``RunConfig.workers``).
        run_dir: the run directory (default: ``results/runs/confirmation``; reused when complete).
        smoke: the artifact's smoke configuration (tests).
    """
    from vidsage_core import narrative, pipeline, tables

    config = pipeline.artifact_config(data=data, smoke=smoke, num_seeds=seeds, device=device,
                                      name="confirmation", dataset="youtube8m-2018-tuning", workers=workers)
    if run_dir is not None:
        config = dataclasses.replace(config, out=str(run_dir))
    metrics = pipeline.run_if_missing(config)
    df, caption = tables.table2(config.out)
    header = (f"Confirmation run on `{paths.relative(data)}` ({seeds} seed(s)), the artifact's "
              "configuration; no choice was made on these videos.\n\n")
    tables.write_table(df, "table2", header + caption, out_dir)
    le_df, le_caption = tables.label_efficiency(config.out)
    tables.write_table(le_df, "label_efficiency", header + le_caption, out_dir)
    summary = narrative.summary_table2(metrics)
    (out_dir / "summary.md").write_text(header + summary + "\n")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.confirm", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=DEFAULT_DATA, help="held-out TFRecords (default: the tuning set)")
    parser.add_argument("--seeds", type=int, default=1, help="number of seeds (0, 1, ...)")
    parser.add_argument("--workers", type=int, default=2, help="worker processes (as the artifact)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--out", default=str(paths.RESULTS / "confirmation"), help="tables directory")
    args = parser.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    print(confirm(args.data, args.seeds, out, args.workers, args.device))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
