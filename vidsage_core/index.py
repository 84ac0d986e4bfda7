"""``results/README.md``: the findings, then one line per artifact (tables, figures, notebooks, runs).

Its own module because it indexes both presentations: it reads figure captions
(:data:`figures.CAPTIONS`) and table captions, while :mod:`figures` draws from the tables' curves,
so neither of those two may import the other's index.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from vidsage_core import paths
from vidsage_core.utils import load_json



def _first_line(path: Path) -> str:
    for line in path.read_text().splitlines():
        if line.strip():
            return line.strip()
    return "(empty)"


def _figure_caption(png: Path) -> str:
    """The PNG's recorded ``Description``, else the figure's caption in ``figures.CAPTIONS``."""
    from vidsage_core.figures import CAPTIONS

    try:
        from PIL import Image

        with Image.open(png) as im:
            text = im.info.get("Description")
    except Exception:  # noqa: BLE001 - an unreadable figure still gets a line
        text = None
    text = text or CAPTIONS.get(png.stem)
    return text.splitlines()[0] if text else f"{png.stem} (no caption recorded)"


def _benchmark_line(md: Path) -> str:
    """One line summarising the benchmarks: rows, targets met, where and when (not the title).

    Read from ``benchmarks.json`` beside the ``.md`` when present, else the ``.md``'s first
    sentence under its title.
    """
    data = md.with_suffix(".json")
    if data.is_file():
        try:
            bench = load_json(data)
            rows = bench.get("rows", [])
            targets = [r for r in rows if r.get("target_met") is not None]
            ratios = [r["ratio"] for r in rows if r.get("ratio")]
            groups = list(dict.fromkeys(r.get("group", "?") for r in rows))
            machine = bench.get("machine", {})
            return (f"{len(rows)} benchmarks against peers ({', '.join(groups)}): "
                    f"{sum(bool(r['target_met']) for r in targets)} of {len(targets)} targets met, "
                    f"ours better (ratio > 1) in {sum(x > 1 for x in ratios)} of {len(ratios)} "
                    f"comparisons; {machine.get('cpu', 'unknown CPU')}, "
                    f"{machine.get('logical_cores', '?')} cores, {str(bench.get('created', '?'))[:10]}.")
        except (OSError, ValueError, KeyError, TypeError):
            pass  # fall back to the Markdown's first sentence
    for line in md.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            return line.split(". ")[0].rstrip(".") + "."
    return "(empty)"


def _notebook_line(nb_path: Path) -> str:
    try:
        nb = json.loads(nb_path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        return f"unreadable notebook ({exc.__class__.__name__})"
    title, params = "", []
    for cell in nb.get("cells", []):
        src = "".join(cell.get("source", []))
        if not title and cell.get("cell_type") == "markdown":
            title = next((ln.lstrip("# ").strip() for ln in src.splitlines() if ln.strip()), "")
        tags = cell.get("metadata", {}).get("tags", [])
        if cell.get("cell_type") == "code" and ("parameters" in tags or "injected-parameters" in tags):
            params += [ln.strip() for ln in src.splitlines()
                       if "=" in ln and not ln.strip().startswith("#")]
    text = title or "notebook"
    if params:
        joined = "; ".join(params)
        text += f" — parameters: {joined[:200]}{'…' if len(joined) > 200 else ''}"
    return text


def _run_line(metrics_path: Path) -> str:
    try:
        m = load_json(metrics_path)
        prov = m.get("provenance", {})
    except (OSError, json.JSONDecodeError) as exc:
        return f"unreadable metrics.json ({exc.__class__.__name__})"
    methods = sorted({r.get("method", "?") for r in m.get("rows", [])})
    kind = "SYNTHETIC" if prov.get("synthetic") else "real"
    return (f"`vidsage run` output on `{prov.get('dataset', '?')}` ({kind}, "
            f"{prov.get('num_videos', '?')} videos, seeds {list(prov.get('seeds', []))}, "
            f"{len(methods)} methods: {', '.join(methods[:8])}{'…' if len(methods) > 8 else ''})")


def results_index(results_dir: str | Path = paths.RESULTS,
                  figures_dir: str | Path = paths.FIGURES, headline: str | None = None,
                  timing: str | None = None) -> str:
    """Write ``<results_dir>/README.md``: the findings, then one line per artifact.

    Descriptions are read from the artifacts themselves: a table's caption title (first line of
    its ``.md``), a figure's caption (PNG ``Description`` written by ``figures.save_fig``, else
    ``figures.CAPTIONS``), the benchmarks' summary line, an executed notebook's title and
    parameters, a run's ``metrics.json`` provenance.

    Args:
        results_dir: where the tables, runs and executed notebooks are.
        figures_dir: where the figures are.
        headline: generated Markdown that opens the file (``narrative.headline_findings``).
        timing: a line saying how long the last full regeneration took, where and when.

    Returns:
        The Markdown text written.
    """
    results_dir, figures_dir = Path(results_dir), Path(figures_dir)
    results_dir.mkdir(parents=True, exist_ok=True)

    def rel(p: Path, base: Path) -> str:
        try:
            return str(p.relative_to(base))
        except ValueError:
            return str(p)

    lines = ["# Results", ""]
    if headline:
        lines += ["## Findings", "", headline.strip(), ""]
    if timing:
        lines += [timing.strip(), ""]
    lines += ["Generated by `vidsage_core.index.results_index`; every entry is regenerated by a "
              "command (see the top-level README). One line per artifact: what it is, which data.", ""]
    tables = sorted(p for p in results_dir.glob("*.md") if p.name != "README.md")
    lines += ["## Tables", ""]
    lines += [f"- [`{p.name}`]({p.name}) (+ `{p.stem}.csv`): "
              f"{_benchmark_line(p) if p.stem == 'benchmarks' else _first_line(p)}"
              for p in tables] or ["- (none yet)"]
    figs = sorted(figures_dir.glob("*.png")) if figures_dir.is_dir() else []
    fig_rel = Path(os.path.relpath(figures_dir.resolve(), results_dir.resolve()))
    lines += ["", "## Figures", ""]
    lines += [f"- [`{p.stem}`]({fig_rel / p.name}) (.png, .pdf): {_figure_caption(p)}" for p in figs] \
        or ["- (none yet)"]
    notebooks = sorted((results_dir / "executed").glob("*.ipynb"))
    lines += ["", "## Executed notebooks", ""]
    lines += [f"- [`executed/{p.name}`](executed/{p.name}): {_notebook_line(p)}" for p in notebooks] \
        or ["- (none yet)"]
    runs = sorted((results_dir / "runs").glob("**/metrics.json"))
    lines += ["", "## Runs", ""]
    lines += [f"- `{rel(p.parent, results_dir)}/`: {_run_line(p)}" for p in runs] or ["- (none yet)"]
    text = "\n".join(lines) + "\n"
    (results_dir / "README.md").write_text(text)
    return text
