"""Run the numbered notebooks with papermill: what ``./reproduce.sh`` calls.

Each notebook is executed into ``results/executed/`` with the parameters it declares. A notebook
is skipped when its executed copy exists and nothing it depends on changed (the notebook, the
parameters, the ``vidsage_core`` sources and the input data); ``--force`` re-runs everything. A
failing notebook stops the run with its name and a non-zero exit code, and its partial executed
copy is kept for inspection.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from pathlib import Path

from vidsage_core import paths

NOTEBOOKS_DIR = paths.ROOT / "notebooks"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in run order, optionally filtered by number or name fragment."""
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


def _data_fingerprint(data: str) -> str:
    """Names, sizes and mtimes of the input files: cheap, and changes when the data does."""
    import glob

    p = Path(data)
    files = sorted(p.glob("**/*")) if p.is_dir() else sorted(Path(f) for f in glob.glob(data))
    h = hashlib.sha256()
    for f in files:
        if f.is_file():
            st = f.stat()
            h.update(f"{f}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()


def _sources_fingerprint() -> str:
    h = hashlib.sha256()
    for f in sorted((paths.ROOT / "vidsage_core").rglob("*")):
        if f.is_file() and f.suffix in {".py", ".txt", ".json", ".csv"}:
            h.update(f.read_bytes())
    return h.hexdigest()


def stamp_for(notebook: Path, parameters: dict, data_fp: str, src_fp: str) -> str:
    h = hashlib.sha256()
    h.update(notebook.read_bytes())
    h.update(json.dumps(parameters, sort_keys=True).encode())
    h.update(data_fp.encode())
    h.update(src_fp.encode())
    return h.hexdigest()


def notebook_parameters(notebook: Path, wanted: dict) -> dict:
    """Keep only the parameters the notebook's ``parameters`` cell declares."""
    import papermill

    declared = papermill.inspect_notebook(str(notebook))
    return {k: v for k, v in wanted.items() if k in declared}


def run_notebooks(
    parameters: dict,
    only: list[str] | None = None,
    force: bool = False,
    results_dir: Path | None = None,
) -> int:
    """Execute the notebooks in order; return a process exit code."""
    import papermill

    results_dir = Path(results_dir or paths.RESULTS)
    executed_dir = results_dir / "executed"
    stamps_dir = results_dir / ".stamps"
    executed_dir.mkdir(parents=True, exist_ok=True)
    stamps_dir.mkdir(parents=True, exist_ok=True)
    notebooks = notebook_paths(only)
    if not notebooks:
        print(f"no notebooks match {only!r} in {NOTEBOOKS_DIR}", file=sys.stderr)
        return 2
    data_fp = _data_fingerprint(parameters.get("data", paths.YT8M_2018_GLOB))
    src_fp = _sources_fingerprint()
    t_all = time.perf_counter()
    for i, nb in enumerate(notebooks, 1):
        params = notebook_parameters(nb, parameters)
        out = executed_dir / nb.name
        stamp_file = stamps_dir / f"{nb.stem}.stamp"
        stamp = stamp_for(nb, params, data_fp, src_fp)
        if not force and out.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            print(f"[{i}/{len(notebooks)}] {nb.stem}: up to date, skipped (--force re-runs it)")
            continue
        print(f"[{i}/{len(notebooks)}] {nb.stem}: running with {params}", flush=True)
        t0 = time.perf_counter()
        stamp_file.unlink(missing_ok=True)
        try:
            papermill.execute_notebook(
                str(nb), str(out), parameters=params, kernel_name="python3",
                cwd=str(paths.ROOT), progress_bar=True,
            )
        except Exception as exc:  # papermill keeps the partial executed copy at `out`
            print(f"\nFAILED: notebook {nb.stem} ({type(exc).__name__}).\n"
                  f"Partial executed copy: {out}\n{exc}", file=sys.stderr)
            return 1
        stamp_file.write_text(stamp)
        print(f"[{i}/{len(notebooks)}] {nb.stem}: done in {time.perf_counter() - t0:.0f} s")
    print(f"\nAll {len(notebooks)} notebooks done in {time.perf_counter() - t_all:.0f} s.")
    print(f"Tables:    {results_dir}/table{{1,2,3,4}}.{{md,csv}}")
    print(f"Figures:   {paths.FIGURES}/")
    print(f"Notebooks: {executed_dir}/")
    print(f"Index:     {results_dir}/README.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./reproduce.sh",
        description="Regenerate VidSage's tables and figures by executing notebooks/NN_*.ipynb.",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="tiny parameters: the whole pipeline in a few minutes")
    parser.add_argument("--force", action="store_true", help="re-run up-to-date notebooks too")
    parser.add_argument("--data", default=paths.YT8M_2018_GLOB,
                        help="YouTube-8M-format TFRecords: a directory, a file or a glob "
                             "(default: the embedded real sample, data/yt8m/video_level_2018)")
    parser.add_argument("--only", action="append", metavar="NN",
                        help="run only notebooks whose name contains this (repeatable)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seeds", type=int, default=3, help="number of training seeds")
    args = parser.parse_args(argv)
    data = args.data
    if Path(data).is_dir():
        data = str(Path(data).resolve())
    parameters = {"data": data, "smoke": args.smoke, "device": args.device,
                  "num_seeds": args.seeds}
    return run_notebooks(parameters, only=args.only, force=args.force)


if __name__ == "__main__":
    raise SystemExit(main())
