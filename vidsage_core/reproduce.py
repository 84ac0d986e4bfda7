"""Run the numbered notebooks with papermill: what ``./reproduce.sh`` calls.

Each notebook is executed into ``results/executed/`` with the parameters it declares, in the
registered "Python (VidSage)" kernel (``vidsage``). A notebook is skipped when its executed copy
exists and nothing it depends on changed (the notebook, the parameters, the ``vidsage_core``
sources and the input data); ``--force`` re-runs everything. A failing notebook stops the run
with its name and a non-zero exit code, and its partial executed copy is kept for inspection.

``notebooks/NN_*.ipynb`` are the source; each has a jupytext percent-format mirror
``notebooks/NN_*.py`` for readable diffs, rewritten from the ``.ipynb`` before every run
(:func:`sync_pairs`). Executed copies name no absolute path of this machine: every string in them
goes through :func:`vidsage_core.paths.relative` after the run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

from vidsage_core import paths

NOTEBOOKS_DIR = paths.ROOT / "notebooks"
KERNEL = "vidsage"  # registered by ./reproduce.sh setup as "Python (VidSage)"
PAIR_FORMAT = "py:percent"


def notebook_paths(only: list[str] | None = None) -> list[Path]:
    """The numbered notebooks in run order, optionally filtered by number or name fragment."""
    found = sorted(NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb"))
    if only:
        found = [p for p in found if any(o in p.stem for o in only)]
    return found


def paired_path(notebook: Path) -> Path:
    """The jupytext percent-format mirror of a notebook: ``NN_name.py`` beside ``NN_name.ipynb``."""
    return notebook.with_suffix(".py")


def pair_text(notebook: Path) -> str:
    """The percent-format text that mirrors ``notebook`` (what its ``.py`` must contain)."""
    import jupytext

    return jupytext.writes(jupytext.read(notebook), fmt=PAIR_FORMAT)


def sync_pairs(notebooks: list[Path] | None = None) -> list[Path]:
    """Rewrite each notebook's ``.py`` mirror from its ``.ipynb`` where they differ.

    Returns:
        The ``.py`` files rewritten.
    """
    written = []
    for nb in notebooks if notebooks is not None else notebook_paths():
        text, py = pair_text(nb), paired_path(nb)
        if not py.exists() or py.read_text() != text:
            py.write_text(text)
            written.append(py)
    return written


def make_portable(executed: Path) -> None:
    """Rewrite an executed notebook so that no string in it names this machine's paths."""
    import nbformat

    def clean(value):
        if isinstance(value, str):
            return paths.relative(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value

    nb = nbformat.read(executed, as_version=4)
    nbformat.write(nbformat.from_dict(clean(nb)), executed)


def _kernel_name() -> str:
    """``vidsage`` when registered (./reproduce.sh setup does it), else a clear error."""
    from jupyter_client.kernelspec import KernelSpecManager

    if KERNEL not in KernelSpecManager().find_kernel_specs():
        raise SystemExit(f"Jupyter kernel {KERNEL!r} (\"Python (VidSage)\") is not registered: "
                         "run ./reproduce.sh setup (or: python -m ipykernel install --sys-prefix "
                         f"--name {KERNEL} --display-name \"Python (VidSage)\")")
    return KERNEL


def _machine() -> str:
    """CPU model, cores and memory of this machine, in words (no host name, no path)."""
    import psutil

    cpu = "unknown CPU"
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in
                   Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    from vidsage_core.precision import cpu_has_native_bf16

    # Whether the run's heads and fine-tuning could use bf16 products (RunConfig.precision "auto").
    bf16 = "native bf16 products" if cpu_has_native_bf16() else "no native bf16 (fp32 products)"
    return (f"{cpu}, {os.cpu_count()} logical cores, "
            f"{psutil.virtual_memory().total / 2**30:.1f} GiB RAM, {bf16}")


def timing_line(results_dir: Path) -> str | None:
    """The sentence ``results/README.md`` gives the last complete regeneration (``timing.json``)."""
    path = Path(results_dir) / "timing.json"
    if not path.is_file():
        return None
    t = json.loads(path.read_text())
    return (f"**Time.** The last complete regeneration (`./reproduce.sh"
            f"{' --smoke' if t['smoke'] else ''}`, all {t['notebooks']} notebooks, none skipped) "
            f"took {t['seconds'] / 60:.1f} minutes ({t['seconds']:.0f} s) on {t['date']}, on "
            f"{t['machine']}, 1-minute load average {t['load_at_start']:.2f} at the start.")


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
    import logging

    import papermill

    # One line per notebook plus a progress bar: no per-notebook debugger warning from the kernel
    # (debugpy on Python 3.11 warns about frozen modules) and no papermill INFO chatter.
    os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    logging.getLogger("papermill").setLevel(logging.WARNING)
    kernel = _kernel_name()
    results_dir = Path(results_dir or paths.RESULTS)
    executed_dir = results_dir / "executed"
    stamps_dir = results_dir / ".stamps"
    executed_dir.mkdir(parents=True, exist_ok=True)
    stamps_dir.mkdir(parents=True, exist_ok=True)
    notebooks = notebook_paths(only)
    if not notebooks:
        print(f"no notebooks match {only!r} in {NOTEBOOKS_DIR}", file=sys.stderr)
        return 2
    sync_pairs(notebooks)
    data_fp = _data_fingerprint(parameters.get("data") or paths.YT8M_2018_GLOB)
    src_fp = _sources_fingerprint()
    t_all = time.perf_counter()
    load_at_start = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    skipped = 0
    for i, nb in enumerate(notebooks, 1):
        params = notebook_parameters(nb, parameters)
        out = executed_dir / nb.name
        stamp_file = stamps_dir / f"{nb.stem}.stamp"
        stamp = stamp_for(nb, params, data_fp, src_fp)
        if not force and out.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
            print(f"[{i}/{len(notebooks)}] {nb.stem}: up to date, skipped (--force re-runs it)")
            skipped += 1
            continue
        print(f"[{i}/{len(notebooks)}] {nb.stem}: running with {params}", flush=True)
        t0 = time.perf_counter()
        stamp_file.unlink(missing_ok=True)
        try:
            papermill.execute_notebook(
                str(nb), str(out), parameters=params, kernel_name=kernel,
                cwd=str(paths.ROOT), progress_bar=True, log_output=False,
                # ipykernel 7 logs a transport warning at every start; errors still show.
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        except Exception as exc:  # papermill keeps the partial executed copy at `out`
            if out.exists():
                make_portable(out)
            print(f"\nFAILED: notebook {nb.stem} ({type(exc).__name__}).\n"
                  f"Partial executed copy: {paths.relative(out)}\n{exc}", file=sys.stderr)
            return 1
        make_portable(out)
        stamp_file.write_text(stamp)
        print(f"[{i}/{len(notebooks)}] {nb.stem}: done in {time.perf_counter() - t0:.0f} s")
    seconds = time.perf_counter() - t_all
    print(f"\nAll {len(notebooks)} notebooks done in {seconds:.0f} s.")
    if skipped == 0 and not only:  # a complete regeneration: record how long it took, and where
        import datetime as dt

        (results_dir / "timing.json").write_text(json.dumps({
            "seconds": round(seconds, 1), "notebooks": len(notebooks),
            "smoke": bool(parameters.get("smoke")), "load_at_start": round(load_at_start, 2),
            "date": dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "machine": _machine()}, indent=2) + "\n")
    if (results_dir / "README.md").exists():
        from vidsage_core import index, narrative

        index.results_index(results_dir, headline=narrative.headline_findings(results_dir),
                             timing=timing_line(results_dir))
    rel = paths.relative
    print(f"Tables:    {rel(results_dir)}/table{{1,2,3,4}}.{{md,csv}}")
    print(f"Figures:   {rel(paths.FIGURES)}/")
    print(f"Notebooks: {rel(executed_dir)}/")
    print(f"Index:     {rel(results_dir)}/README.md")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="./reproduce.sh",
        description="Regenerate VidSage's tables and figures by executing notebooks/NN_*.ipynb.",
    )
    parser.add_argument("--smoke", action="store_true",
                        help="tiny parameters: the whole pipeline in a few minutes")
    parser.add_argument("--force", action="store_true", help="re-run up-to-date notebooks too")
    parser.add_argument("--data", default=None,
                        help="YouTube-8M-format TFRecords: a directory, a file or a glob, recorded "
                             "as given (default: the embedded real sample, "
                             "data/yt8m/video_level_2018)")
    parser.add_argument("--only", action="append", metavar="NN",
                        help="run only notebooks whose name contains this (repeatable)")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--seeds", type=int, default=3, help="number of training seeds")
    parser.add_argument("--sync-only", action="store_true",
                        help="only rewrite the notebooks' jupytext .py mirrors from the .ipynb")
    args = parser.parse_args(argv)
    if args.sync_only:
        for py in sync_pairs():
            print(f"wrote {paths.relative(py)}")
        return 0
    # The notebooks run with the repository root as working directory (./reproduce.sh cd's
    # there), so a relative --data is kept as given: provenance then names it as the user did.
    parameters = {"data": args.data, "smoke": args.smoke, "device": args.device,
                  "num_seeds": args.seeds}
    return run_notebooks(parameters, only=args.only, force=args.force)


if __name__ == "__main__":
    raise SystemExit(main())
