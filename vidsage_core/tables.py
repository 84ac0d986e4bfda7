"""The paper's tables: reference numbers from the paper beside numbers measured by ``vidsage run``.

Two kinds of number live in every table, never mixed in one column:

* ``paper ...`` columns hold reference numbers copied by hand from the paper
  (``PAPER_TABLE1`` .. ``PAPER_TABLE4`` below; the only numbers typed in this module);
* ``ours ...`` columns are read from a run directory's ``metrics.json`` (written by
  ``vidsage_core.pipeline``) or from a latency breakdown dict (``vidsage_core.video``), and are
  reported as mean and sample standard deviation (``ddof=1``) over seeds, in percent.

A measured metric ``X`` is stored as two numeric columns ``"X mean"`` and ``"X std"`` so the CSV
keeps full precision; :func:`write_table` renders them as one ``mean ± std`` column in Markdown.

Metric names follow YouTube-8M's starter code, and the paper's own variants sit beside them under
their own names: ``map`` is YouTube-8M's top-20 mAP, ``bucketed_map`` the paper's §4.1 bucketed
mAP, ``mean_ap`` the exact per-class AP mean (Charades' official classification metric),
``hit_at_one``, ``perr`` and ``gap`` as in YouTube-8M, ``top1``/``top5`` the top-k accuracy.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from vidsage_core import paths
from vidsage_core.utils import load_json

# ---------------------------------------------------------------------------------------------
# Reference numbers, copied exactly from the paper (Aminian, "VidSage", Tables 1-4), in percent.
# None marks a cell the paper prints as "–". Method names are kept as printed, citations included.
# ---------------------------------------------------------------------------------------------

#: Table 1: "Accuracy vs. Latency ... Accuracy is the average of mAP in the three explored
#: datasets"; latency for a 5 s video on one V100.
PAPER_TABLE1: list[dict[str, Any]] = [
    {"method": "VidSage", "mAP": 41.8, "latency_s": 4.1},
    {"method": "LiteVidSage", "mAP": 32.9, "latency_s": 2.3},
]

#: Table 2: video classification on YouTube-8M (baselines as reported by Abu-El-Haija et al.).
PAPER_TABLE2: list[dict[str, Any]] = [
    {"input_features": "Frame-level, $\\{x_{1:F_v}^v\\}$", "method": "Logistic + Average",
     "mAP": 11.0, "top1": 50.8, "perr": 42.2},
    {"input_features": "Frame-level, $\\{x_{1:F_v}^v\\}$", "method": "Deep Bag of Frames",
     "mAP": 26.9, "top1": 62.7, "perr": 55.1},
    {"input_features": "Frame-level, $\\{x_{1:F_v}^v\\}$", "method": "LSTM",
     "mAP": 26.6, "top1": 64.5, "perr": 57.3},
    {"input_features": "Video-level, $\\mu$", "method": "Hinge loss",
     "mAP": 17.0, "top1": 56.3, "perr": 47.9},
    {"input_features": "Video-level, $\\mu$", "method": "Logistic Regression",
     "mAP": 28.1, "top1": 60.5, "perr": 53.0},
    {"input_features": "Video-level, $\\mu$", "method": "Mixture-of-2-Experts",
     "mAP": 29.6, "top1": 62.3, "perr": 54.9},
    {"input_features": "Video-level, $[\\mu; \\sigma; Top - 5]$", "method": "Mixture-of-2-Experts",
     "mAP": 30.0, "top1": 63.3, "perr": 55.8},
    {"input_features": "Video-level", "method": "LiteVidSage (Ours)",
     "mAP": 33.1, "top1": 65.2, "perr": None},
    {"input_features": "Video-level", "method": "VidSage (Ours)",
     "mAP": 42.5, "top1": 73.0, "perr": None},
]

#: Table 3: action classification on Moments in Time.
PAPER_TABLE3: list[dict[str, Any]] = [
    {"method": "BatchNorm[23]", "modality": "Flow", "top1": 11.60, "top5": 27.40},
    {"method": "TSN-2Stream[24]", "modality": "RGB+F", "top1": 25.32, "top5": 50.10},
    {"method": "ResNet50-ImageNet", "modality": "RGB", "top1": 27.16, "top5": 51.68},
    {"method": "Two-stream (2+1)D ResNet-50", "modality": "RGB+F", "top1": 28.97, "top5": 55.55},
    {"method": "I3D [11]", "modality": "RGB+F", "top1": 29.51, "top5": 56.6},
    {"method": "AssembleNet-50[1]", "modality": "RGB+F", "top1": 33.91, "top5": 60.86},
    {"method": "AssembleNet-101 [1]", "modality": "RGB+F", "top1": 34.27, "top5": 62.71},
    {"method": "LiteVidSage", "modality": "RGB", "top1": 18.9, "top5": 39.9},
    {"method": "VidSage", "modality": "RGB", "top1": 28.4, "top5": 51.8},
]

#: Table 4: action classification on Charades. ``mAP_printed`` is the cell as printed; the paper
#: prints "48.7.6" for one row, which is not a number: its numeric ``mAP`` is NaN (see ``note``).
PAPER_TABLE4: list[dict[str, Any]] = [
    {"method": "2-stream [26]", "pretrain": "UCF101", "modality": "RGB+Flow", "mAP_printed": "18.6"},
    {"method": "Asyn-TF [27]", "pretrain": "UCF101", "modality": "RGB+Flow", "mAP_printed": "22.4"},
    {"method": "CoViAR[28]", "pretrain": "ImageNet", "modality": "Compressed", "mAP_printed": "21.9"},
    {"method": "I3D [11]", "pretrain": "Kinetics", "modality": "RGB", "mAP_printed": "32.9"},
    {"method": "I3D-NL [11]", "pretrain": "Kinetics", "modality": "RGB", "mAP_printed": "37.5"},
    {"method": "SlowFast[17]", "pretrain": "Kinetics", "modality": "RGB+Flow", "mAP_printed": "45.2"},
    {"method": "2-stream [1]", "pretrain": "ResNet-50", "modality": "RGB+Flow", "mAP_printed": "48.7.6"},
    {"method": "2-stream (2+1)D [1]", "pretrain": "ResNet-101", "modality": "RGB+Flow",
     "mAP_printed": "50.6"},
    {"method": "AssembleNet-50[1]", "pretrain": "Kinetics", "modality": "RGB+Flow", "mAP_printed": "56.6"},
    {"method": "AssembleNet-101 [1]", "pretrain": "Kinetics", "modality": "RGB+Flow",
     "mAP_printed": "58.6"},
    {"method": "VidSage (Ours)", "pretrain": "YT-8m", "modality": "RGB", "mAP_printed": "54.1"},
    {"method": "LiteVidSage (Ours)", "pretrain": "YT-8m", "modality": "RGB", "mAP_printed": "44.8"},
]

SYNTHETIC_NOTE = "synthetic stand-in, not a reproduction"
NEEDS_FRAMES_NOTE = "needs frame-level data"

# Which rows of metrics.json feed which paper row: (variant, head). Frame-level heads are fitted
# on raw frame features, so their rows carry variant "raw" (or "frame" in frame-only runs).
_TABLE2_BASELINES: list[tuple[str, str]] = [
    ("frame", "logistic_average"),   # Logistic + Average
    ("frame", "dbof"),               # Deep Bag of Frames
    ("frame", "lstm"),               # LSTM
    ("raw", "hinge"),                # Hinge loss
    ("raw", "logistic"),             # Logistic Regression
    ("raw", "moe"),                  # Mixture-of-2-Experts
    ("frame", "moe_mu_sigma_top5"),  # [mu; sigma; Top-5] Mixture-of-2-Experts
]
_HEAD_ORDER = ("logistic", "hinge", "moe")
_METHOD_NAME = {"lite": "LiteVidSage", "vidsage": "VidSage"}

#: measured metric key -> column stem, in the order the tables show them.
_T2_METRICS: list[tuple[str, str]] = [
    ("map", "ours map@20 (YT-8M `map`)"),
    ("bucketed_map", "ours bucketed mAP (paper §4.1 `bucketed_map`)"),
    ("hit_at_one", "ours hit@1"),
    ("perr", "ours PERR"),
    ("gap", "ours GAP"),
]


# ---------------------------------------------------------------------------------------------
# Paper tables as DataFrames
# ---------------------------------------------------------------------------------------------

def _parse_number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


def paper_table(number: int) -> pd.DataFrame:
    """The paper's Table ``number`` (1-4) as a DataFrame, numbers in percent / seconds.

    Table 4 keeps the printed cell in ``mAP_printed`` and a numeric ``mAP`` (NaN where the
    printed cell is not a number, with the reason in ``note``).
    """
    if number == 1:
        return pd.DataFrame(PAPER_TABLE1)
    if number == 2:
        return pd.DataFrame(PAPER_TABLE2).astype({"perr": float})
    if number == 3:
        return pd.DataFrame(PAPER_TABLE3)
    if number == 4:
        df = pd.DataFrame(PAPER_TABLE4)
        df["mAP"] = [_parse_number(s) for s in df["mAP_printed"]]
        df["note"] = ["" if not math.isnan(v) else
                      f"paper prints {s!r} (typo, not a number): numeric mAP left NaN"
                      for s, v in zip(df["mAP_printed"], df["mAP"])]
        return df
    raise ValueError(f"paper_table: no Table {number} in the paper (1-4)")


# ---------------------------------------------------------------------------------------------
# Writer
# ---------------------------------------------------------------------------------------------

def _fmt_float(x: float, paper: bool) -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "–"
    if paper:
        # The paper prints at least one decimal ("11.0", "73.0"); more only where it has them.
        return f"{x:.1f}" if round(x, 1) == x else f"{x:g}"
    if abs(x) >= 0.1 or x == 0:
        return f"{x:.2f}"
    return f"{x:.3g}"  # small latencies (seconds) keep three significant digits


def _cell(value: Any, paper: bool = False) -> str:
    if value is None:
        return "–"
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value))
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        return _fmt_float(float(value), paper)
    text = str(value)
    if text in ("nan", "None"):
        return "–"
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(df: pd.DataFrame) -> str:
    """Render ``df`` as a GitHub Markdown table.

    ``"X mean"``/``"X std"`` column pairs become one ``"X"`` column showing ``mean ± std``
    (just the mean where the std is NaN, e.g. one seed). Columns named ``paper ...`` are printed
    as short as the paper prints them; other floats with two decimals. NaN prints as "–".
    """
    columns = list(df.columns)
    merged: list[tuple[str, str | None, str | None]] = []  # (header, mean col, std col)
    used: set[str] = set()
    for col in columns:
        if col in used:
            continue
        if col.endswith(" mean") and col[:-5] + " std" in columns:
            stem = col[:-5]
            merged.append((f"{stem} (mean ± std)", col, stem + " std"))
            used.update({col, stem + " std"})
        else:
            merged.append((col, col, None))
            used.add(col)
    lines = ["| " + " | ".join(h.replace("|", "\\|") for h, _, _ in merged) + " |",
             "|" + "|".join("---" for _ in merged) + "|"]
    for _, row in df.iterrows():
        cells = []
        for header, mean_col, std_col in merged:
            paper = header.startswith("paper")
            value = row[mean_col]
            if std_col is None:
                cells.append(_cell(value, paper))
                continue
            mean_txt = _cell(value)
            std = row[std_col]
            if mean_txt != "–" and std is not None and not (isinstance(std, float) and math.isnan(std)):
                mean_txt = f"{mean_txt} ± {_cell(std)}"
            cells.append(mean_txt)
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def write_table(df: pd.DataFrame, name: str, caption: str,
                results_dir: str | Path = paths.RESULTS) -> tuple[Path, Path]:
    """The one table writer: ``<results_dir>/<name>.csv`` and ``<results_dir>/<name>.md``.

    Args:
        df: the table (as returned by ``table1`` .. ``table4``).
        name: file stem, e.g. ``"table2"``.
        caption: provenance text; written above the Markdown table (first line = title).
        results_dir: output directory (created if missing).

    Returns:
        ``(csv_path, md_path)``. The CSV holds every column at full float precision (pandas
        writes the shortest repr that round-trips), so a rerun's diff shows real changes only.
    """
    results_dir = Path(results_dir)
    results_dir.mkdir(parents=True, exist_ok=True)
    csv_path = results_dir / f"{name}.csv"
    md_path = results_dir / f"{name}.md"
    df.to_csv(csv_path, index=False)
    md_path.write_text(caption.strip() + "\n\n" + to_markdown(df))
    return csv_path, md_path


# ---------------------------------------------------------------------------------------------
# Reading runs
# ---------------------------------------------------------------------------------------------

def load_run_metrics(run_dir: str | Path) -> dict:
    """Read ``<run_dir>/metrics.json`` (``{"rows": [...], "provenance": {...}}``)."""
    path = Path(run_dir) / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"no metrics.json in run directory {run_dir} (run `vidsage run` first)")
    metrics = load_json(path)
    if "rows" not in metrics or "provenance" not in metrics:
        raise ValueError(f"{path}: expected keys 'rows' and 'provenance', found {sorted(metrics)}")
    return metrics


#: Variants whose rows come from a GNN (the others are baselines, protocol "none").
GNN_VARIANTS = ("lite", "vidsage", "lite+raw", "vidsage+raw")
#: What each protocol value means in a table.
PROTOCOL_LABEL = {"none": "none (baseline)", "probe": "linear probe (frozen embeddings)",
                  "finetune": "fine-tuned (paper §4.2)"}


def row_field(row: Mapping[str, Any], key: str) -> Any:
    """A row's ``protocol``, ``label_fraction``, ``init`` or ``preset``, with the meaning older
    ``metrics.json`` files (written before these fields existed) had: all labels, GNN rows
    probed from the unsupervised model, baselines protocol "none"."""
    gnn = row.get("variant") in GNN_VARIANTS
    if key == "protocol":
        return row.get("protocol") or ("probe" if gnn else "none")
    if key == "label_fraction":
        return float(row.get("label_fraction", 1.0))
    if key == "init":
        return row.get("init", "unsupervised" if gnn else None)
    if key == "preset":
        default = "default" if row_field(row, "protocol") == "finetune" else None
        return row.get("preset", default)
    return row.get(key)


#: The fine-tuned rows of the paper's protocol (default configuration, from the unsupervised model).
FINETUNED = {"protocol": "finetune", "init": "unsupervised", "preset": "default"}


def _select(rows: Sequence[dict], variant: str, head: str,
            object_source: str | None | type = ..., **where: Any) -> list[dict]:
    """Rows of one (variant, head[, object source]); variant "frame" accepts "raw" and "frame".

    ``where`` filters on :func:`row_field` values; ``label_fraction`` defaults to 1.0 (all
    labels), so label-efficiency rows never mix into the full-label tables.
    """
    where = {"label_fraction": 1.0, **where}
    variants = {"raw", "frame"} if variant == "frame" else {variant}
    out = [r for r in rows if r.get("variant") in variants and r.get("head") == head]
    if object_source is not ...:
        out = [r for r in out if r.get("object_source") == object_source]
    return [r for r in out if _matches(r, where)]


def _matches(row: Mapping[str, Any], where: Mapping[str, Any]) -> bool:
    """Whether every :func:`row_field` of ``row`` named in ``where`` has that value."""
    return all(row_field(row, k) == v for k, v in where.items())


def aggregate(rows: Sequence[dict], metric: str, scale: float = 100.0) -> tuple[float, float, int]:
    """Mean and sample standard deviation (ddof=1) of ``metric`` over ``rows`` (one per seed).

    Returns:
        ``(mean, std, n)`` scaled by ``scale`` (percent by default); NaN mean for no rows,
        NaN std for fewer than two rows. Rows without the metric (or with null) are ignored.
    """
    values = np.array([float(r[metric]) for r in rows if r.get(metric) is not None], dtype=np.float64)
    values = values[np.isfinite(values)]
    n = int(values.size)
    if n == 0:
        return math.nan, math.nan, 0
    mean = float(values.mean()) * scale
    std = float(values.std(ddof=1)) * scale if n > 1 else math.nan
    return mean, std, n


def _measured(rows: Sequence[dict], metrics: Sequence[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    n_seeds = 0
    for key, stem in metrics:
        mean, std, n = aggregate(rows, key)
        out[f"{stem} mean"], out[f"{stem} std"] = mean, std
        n_seeds = max(n_seeds, n)
    out["n seeds"] = n_seeds
    return out


def _empty_measured(metrics: Sequence[tuple[str, str]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for _, stem in metrics:
        out[f"{stem} mean"], out[f"{stem} std"] = math.nan, math.nan
    out["n seeds"] = 0
    return out


def _fill_measured(row: dict, sel: Sequence[dict], metrics: Sequence[tuple[str, str]], method: str,
                   synthetic: bool, notes: Sequence[str] = ()) -> dict:
    """``row`` with the measured cells of ``sel`` (empty when the run lacks ``method``) and its note."""
    row.update(_measured(sel, metrics) if sel else _empty_measured(metrics))
    notes = list(notes)
    if not sel:
        notes.append(f"not in this run ({method})")
    elif synthetic:
        notes.append(SYNTHETIC_NOTE)
    row["note"] = "; ".join(notes)
    return row


def describe_provenance(prov: Mapping[str, Any]) -> str:
    """One sentence of provenance: dataset, real/synthetic, split sizes, classes, seeds, commit."""
    split = prov.get("split") or {}
    kind = "SYNTHETIC stand-in data, not a reproduction" if prov.get("synthetic") else "real data"
    parts = [
        f"dataset `{prov.get('dataset', '?')}` ({kind})",
        f"source `{paths.relative(prov.get('source', '?'))}`",
        f"{prov.get('num_videos', '?')} videos, split train/val/test = "
        f"{split.get('train', '?')}/{split.get('val', '?')}/{split.get('test', '?')}",
        f"{prov.get('num_classes_evaluated', '?')} classes evaluated",
        f"seeds {list(prov.get('seeds', []))}",
        f"device {prov.get('device', '?')}",
        f"git commit {prov.get('git_commit') or 'unknown'}",
    ]
    if prov.get("created"):
        parts.append(f"created {prov['created']}")
    skipped = prov.get("skipped") or {}
    if skipped:
        parts.append("skipped records: " + ", ".join(f"{k}: {v}" for k, v in skipped.items()))
    return "; ".join(parts) + "."


def _object_sources(rows: Sequence[dict], variant: str) -> list[str | None]:
    seen: list[str | None] = []
    for r in rows:
        if r.get("variant") == variant and r.get("object_source") not in seen:
            seen.append(r.get("object_source"))
    return seen


def _heads(rows: Sequence[dict], variant: str) -> list[str]:
    present = {r.get("head") for r in rows if r.get("variant") == variant}
    return [h for h in _HEAD_ORDER if h in present] + sorted(present - set(_HEAD_ORDER) - {None})


def _ours_rows(rows: Sequence[dict], metrics: Sequence[tuple[str, str]], synthetic: bool,
               paper_cells: Mapping[str, Mapping[str, Any]], base: Mapping[str, Any] | None = None,
               variants: Sequence[str] = ("lite", "vidsage"),
               names: Mapping[str, str] | None = None,
               extra_notes: Sequence[str] = (),
               where: Mapping[str, Any] | None = None) -> list[dict]:
    """One row per (variant, object source, head) of our GNN variants, paper cells beside.

    ``where``: :func:`row_field` filter (default: the linear-probe rows).
    """
    where = dict(where or {"protocol": "probe"})
    out = []
    for variant in variants:
        for source in _object_sources(rows, variant) or [None]:
            heads = sorted({r.get("head") for r in rows if r.get("variant") == variant
                            and _matches(r, where)})
            for head in [h for h in _HEAD_ORDER if h in heads] + \
                    [h for h in heads if h not in _HEAD_ORDER] or ["logistic"]:
                sel = _select(rows, variant, head, source, **where)
                name = (names or _METHOD_NAME)[variant]
                if variant.startswith("vidsage"):
                    name += f" [objects: {source or 'unknown'}]"
                row = dict(base or {})
                row.update({"method": name, "head": head})
                row.update(paper_cells.get(variant, {}))
                out.append(_fill_measured(row, sel, metrics, f"{variant}-{head}", synthetic, extra_notes))
    return out


# ---------------------------------------------------------------------------------------------
# Table 2: YouTube-8M video classification
# ---------------------------------------------------------------------------------------------

def table2(run_dir: str | Path, frame_run_dir: str | Path | None = None,
           paper_exact_run_dir: str | Path | None = None) -> tuple[pd.DataFrame, str]:
    """Table 2: the paper's YouTube-8M rows beside ours, all ours on one split/features/metrics.

    Args:
        run_dir: a ``vidsage run`` directory (``metrics.json`` with raw-*, sgc-*, litevidsage-*,
            vidsage-* rows; frame-level heads too when it was run on frame-level data).
        frame_run_dir: optional run on frame-level data whose frame heads fill the frame-level
            rows (``logistic_average``, ``dbof``, ``lstm``, ``moe_mu_sigma_top5``). When neither
            run has them, those rows say "needs frame-level data".
        paper_exact_run_dir: optional separate run (``--finetune-ablations paper-exact``) whose
            paper-exact rows fill those rows when ``run_dir`` has none: the 1152-wide encoder
            costs ~18x the artifact's per step, so it runs on demand (``pipeline.PAPER_EXACT_RUN``).
            Its provenance is printed in the caption, with a warning where its data or split
            differ from the main run's.

    Returns:
        ``(df, caption)``: one row per paper baseline; the GNN rows once per object source and
        head: fine-tuned (the paper's protocol, with the paper's numbers beside them), the
        paper-exact configuration, the random-init ablation, the linear-probe rows and the
        [x ‖ z] rows; then the beyond-paper baselines (SGC smoothing, SIGN, label propagation,
        Correct & Smooth). Only all-label rows (label fraction 1). Columns: ``input features``,
        ``method``, ``protocol``, ``head``, ``paper mAP``/``paper top-1``/``paper PERR`` (the
        paper's numbers, %), then ours as ``"<metric> mean"``/``"<metric> std"`` in % for
        YouTube-8M's top-20 ``map``, the paper's ``bucketed_map``, ``hit_at_one``, ``perr``
        and ``gap``, ``n seeds`` and ``note``.
    """
    main = load_run_metrics(run_dir)
    rows, prov = main["rows"], main["provenance"]
    frame = load_run_metrics(frame_run_dir) if frame_run_dir is not None else None
    paper_exact_where = {**FINETUNED, "preset": "paper-exact"}
    exact_rows: list[dict] = []
    if paper_exact_run_dir is not None and not any(_matches(r, paper_exact_where) for r in rows):
        exact = load_run_metrics(paper_exact_run_dir)
        exact_rows = [r for r in exact["rows"] if _matches(r, paper_exact_where)]
    synthetic = bool(prov.get("synthetic"))
    paper = pd.DataFrame(PAPER_TABLE2)

    table: list[dict] = []
    frame_rows_used_other_run = False
    for (variant, head), (_, p) in zip(_TABLE2_BASELINES, paper.iloc[:7].iterrows()):
        sel = _select(rows, variant, head)
        from_other = False
        if not sel and variant == "frame" and frame is not None:
            sel = _select(frame["rows"], variant, head)
            from_other = bool(sel)
        row = {"input features": p["input_features"], "method": p["method"],
               "protocol": PROTOCOL_LABEL["none"], "head": head,
               "paper mAP": p["mAP"], "paper top-1": p["top1"], "paper PERR": p["perr"]}
        row.update(_measured(sel, _T2_METRICS) if sel else _empty_measured(_T2_METRICS))
        notes = []
        if not sel:
            notes.append(NEEDS_FRAMES_NOTE if variant == "frame" else f"not in this run (raw-{head})")
        else:
            if from_other:
                frame_rows_used_other_run = True
                notes.append(f"from frame-level run {Path(frame_run_dir).name}")
            if synthetic or (from_other and frame["provenance"].get("synthetic")):
                notes.append(SYNTHETIC_NOTE)
        row["note"] = "; ".join(notes)
        table.append(row)

    paper_cells: dict[str, dict[str, Any]] = {}
    for variant, method in (("lite", "LiteVidSage (Ours)"), ("vidsage", "VidSage (Ours)")):
        p = paper[paper["method"] == method].iloc[0]
        paper_cells[variant] = {"paper mAP": p["mAP"], "paper top-1": p["top1"],
                                "paper PERR": math.nan if p["perr"] is None else p["perr"]}
    nan_cells = {"paper mAP": math.nan, "paper top-1": math.nan, "paper PERR": math.nan}
    ours_names = {"lite": "LiteVidSage (Ours)", "vidsage": "VidSage (Ours)"}

    def gnn_rows(where, protocol, suffix="", paper=True, notes=(), source_rows=None,
                 variants=("lite", "vidsage")):
        names = {v: n + suffix for v, n in ours_names.items()}
        cells = paper_cells if paper else {v: nan_cells for v in ours_names}
        return _ours_rows(rows if source_rows is None else source_rows, _T2_METRICS, synthetic, cells,
                          base={"input features": "Video-level", "protocol": protocol},
                          names=names, extra_notes=list(notes), where=where, variants=variants)

    # The paper's protocol first, with the paper's numbers beside it; then its ablations.
    table += gnn_rows(FINETUNED, PROTOCOL_LABEL["finetune"])
    exact_notes = ["paper §3.3-3.4 as written: d×d layers, sum aggregation, no skip"]
    for variant in ("lite", "vidsage"):
        # A variant the separate run measured takes its rows from there (the main run's rows
        # still name the object sources); any other keeps the main run's, or says it is missing.
        separate = any(r.get("variant") == variant for r in exact_rows)
        table += gnn_rows(paper_exact_where, PROTOCOL_LABEL["finetune"], ", paper-exact configuration",
                          notes=exact_notes + ([f"from the separate run {Path(paper_exact_run_dir).name}"]
                                               if separate else []),
                          source_rows=rows + exact_rows if separate else None, variants=(variant,))
    moe_layer_where = {**FINETUNED, "preset": "moe-layer"}
    moe_layer_variants = [v for v in ("lite", "vidsage")
                          if any(r.get("variant") == v and _matches(r, moe_layer_where) for r in rows)]
    if moe_layer_variants:  # only the variants the run fine-tuned with it (RunConfig.moe_layer_variants)
        table += gnn_rows(moe_layer_where, PROTOCOL_LABEL["finetune"], ", MoE classification layer",
                          paper=False, variants=tuple(moe_layer_variants),
                          notes=["beyond the paper: the same fine-tuning with YouTube-8M's MoE (2 experts) "
                                 "as the classification layer, head for head with the raw MoE and C&S-MoE rows"])
    table += gnn_rows({**FINETUNED, "init": "random"}, PROTOCOL_LABEL["finetune"],
                      ", random init (no pre-training)", paper=False,
                      notes=["ablation: same network and fine-tuning, no unsupervised stage"])
    table += gnn_rows({"protocol": "probe"}, PROTOCOL_LABEL["probe"], paper=False,
                      notes=["the paper's numbers are fine-tuned: see the fine-tuned rows"])
    concat = [v for v in ("lite+raw", "vidsage+raw") if _heads(rows, v)]
    if concat:
        table += _ours_rows(rows, _T2_METRICS, synthetic, {v: nan_cells for v in concat},
                            base={"input features": "Video-level, [x; z] (raw ‖ GNN embedding)",
                                  "protocol": PROTOCOL_LABEL["probe"]},
                            variants=concat,
                            names={"lite+raw": "LiteVidSage ⊕ raw features",
                                   "vidsage+raw": "VidSage ⊕ raw features"},
                            extra_notes=["beyond the paper: head on [x ‖ z]"])

    beyond = [("sgc", "Video-level, [x; ½x + ½·mean kNN(x)]", "SGC smoothing (no learning)",
               "non-learned baseline"),
              ("sign", "Video-level, [x; Ax; A²x] (A: mean over kNN)", "SIGN (decoupled)",
               "decoupled baseline: head on propagated features"),
              ("lp", "labels of kNN train+val videos", "Label propagation (no features)",
               "non-learned baseline"),
              ("cs", "Video-level, μ + labels of kNN videos", "Correct & Smooth on raw head",
               "decoupled baseline: head on x, then C&S (Huang et al. 2021)")]
    for variant, features, name, what in beyond:
        present = _heads(rows, variant)
        if variant != "sgc" and not present:
            continue  # runs made before these rows existed
        for head in present or ["logistic"]:
            sel = _select(rows, variant, head)
            row = {"input features": features, "method": name, "protocol": PROTOCOL_LABEL["none"],
                   "head": head, **nan_cells}
            table.append(_fill_measured(row, sel, _T2_METRICS, f"{variant}-{head}", synthetic,
                                        [f"beyond the paper: {what}"]))

    df = pd.DataFrame(table)
    df = df.astype({"paper mAP": float, "paper top-1": float, "paper PERR": float, "n seeds": int})
    first = ["input features", "method", "protocol", "head"]
    df = df[first + [c for c in df.columns if c not in first]]

    title = (f"Table 2 — YouTube-8M video classification: paper vs. ours on `{prov.get('dataset', '?')}` "
             f"({'SYNTHETIC stand-in, not a reproduction' if synthetic else 'real data'}, "
             f"{prov.get('num_videos', '?')} videos, seeds {list(prov.get('seeds', []))}).")
    caption_lines = [
        title,
        "",
        "Paper columns: copied from the paper's Table 2 (%, '–' where it prints none). "
        "Ours: mean ± sample std (ddof=1) over seeds, in %, every row on the same split, "
        "features and metric code. `map@20` is YouTube-8M's top-20 mAP (`map`); `bucketed mAP` is "
        "the paper's §4.1 bucketed definition (`bucketed_map`); hit@1, PERR and GAP as in "
        "YouTube-8M. `protocol`: \"fine-tuned (paper §4.2)\" rows train the pre-trained GNN with a "
        "logistic classification layer end to end on the train+val labels (the paper's protocol; "
        "its numbers stand beside these rows and the paper-exact configuration); \"linear probe "
        "(frozen embeddings)\" rows fit the head on the frozen unsupervised embeddings; \"none\" "
        "rows are baselines without a GNN. Test videos are attached inductively in every GNN row "
        "and never send messages or labels. All rows use all train+val labels (label fraction 1; "
        "fewer labels: results/label_efficiency.md).",
        "",
        "Provenance: " + describe_provenance(prov),
    ]
    if frame_rows_used_other_run:
        fprov = frame["provenance"]
        caption_lines += ["", "Frame-level rows from a separate run: " + describe_provenance(fprov)]
        mismatch = [k for k in ("dataset", "split", "num_classes_evaluated")
                    if fprov.get(k) != prov.get(k)]
        if mismatch:
            caption_lines.append("WARNING: the frame-level run differs from the main run in "
                                 + ", ".join(mismatch) + "; its rows are not directly comparable.")
    if exact_rows:
        eprov = exact["provenance"]
        caption_lines += ["", "Paper-exact rows from a separate run (the 1152-wide encoder, on demand): "
                          + describe_provenance(eprov)]
        mismatch = [k for k in ("dataset", "split", "num_videos", "num_classes_evaluated")
                    if eprov.get(k) != prov.get(k)]
        if mismatch:
            caption_lines.append("WARNING: the paper-exact run differs from the main run in "
                                 + ", ".join(mismatch) + "; its rows are not directly comparable.")
    if synthetic:
        caption_lines += ["", f"All measured cells: {SYNTHETIC_NOTE}."]
    return df, "\n".join(caption_lines)


# ---------------------------------------------------------------------------------------------
# Tables 3 and 4: action recognition
# ---------------------------------------------------------------------------------------------

def _action_table(run_dir: str | Path, paper: pd.DataFrame, metrics: list[tuple[str, str]],
                  paper_cols: Mapping[str, str], title: str, caption_metrics: str,
                  keep: Sequence[str]) -> tuple[pd.DataFrame, str]:
    run = load_run_metrics(run_dir)
    rows, prov = run["rows"], run["provenance"]
    synthetic = bool(prov.get("synthetic"))

    def paper_part(p: pd.Series) -> dict:
        out = {k: p[k] for k in keep}
        out.update({dst: p[src] for src, dst in paper_cols.items()})
        return out

    table = []
    ours_done = set()
    variant_of = {"LiteVidSage": "lite", "LiteVidSage (Ours)": "lite",
                  "VidSage": "vidsage", "VidSage (Ours)": "vidsage"}
    for _, p in paper.iterrows():
        variant = variant_of.get(p["method"])
        if variant is None:
            row = paper_part(p)
            row["method"] = p["method"]
            row["head"] = ""
            row.update(_empty_measured(metrics))
            row["note"] = p.get("note", "") or ""
            table.append(row)
            continue
        ours = _ours_rows(rows, metrics, synthetic, {variant: {}}, variants=(variant,),
                          names={variant: p["method"]})
        for r in ours:
            r.update(paper_part(p))
        table += ours
        ours_done.add(variant)

    for variant, name in (("raw", "Raw features, no GNN"), ("sgc", "SGC smoothing (no learning)")):
        for head in _heads(rows, variant):
            sel = _select(rows, variant, head)
            row = {k: "" for k in keep}
            row.update({dst: math.nan for dst in paper_cols.values()})
            row.update({"method": name, "head": head})
            row.update(_measured(sel, metrics))
            notes = ["beyond the paper: baseline on the same features"]
            if synthetic:
                notes.append(SYNTHETIC_NOTE)
            row["note"] = "; ".join(notes)
            table.append(row)

    df = pd.DataFrame(table)
    order = ["method", *keep, "head", *paper_cols.values()]
    df = df[order + [c for c in df.columns if c not in order]]
    df = df.astype({c: float for c in paper_cols.values()} | {"n seeds": int})
    lines = [
        f"{title} on `{prov.get('dataset', '?')}` "
        f"({'SYNTHETIC stand-in, not a reproduction' if synthetic else 'real data'}, "
        f"{prov.get('num_videos', '?')} videos, seeds {list(prov.get('seeds', []))}).",
        "",
        "Paper columns: copied from the paper (%). Ours: mean ± sample std (ddof=1) over seeds, "
        f"in %; {caption_metrics} Rows without a measured cell are reference numbers only.",
        "",
        "Provenance: " + describe_provenance(prov),
    ]
    if synthetic:
        lines += ["", f"All measured cells: {SYNTHETIC_NOTE} — the features and labels were generated, "
                      "only the file layout and the code path are the real ones."]
    return df, "\n".join(lines)


def table3(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """Table 3: Moments in Time top-1 / top-5 accuracy, paper rows beside ours.

    Args:
        run_dir: a ``vidsage run`` directory on Moments in Time features
            (``action_datasets.read_moments``), or on its synthetic stand-in.

    Returns:
        ``(df, caption)`` with ``method``, ``modality``, ``head``, ``paper top-1``,
        ``paper top-5``, ``ours top-1 mean/std``, ``ours top-5 mean/std``, ``n seeds``, ``note``.
        Measured rows of a synthetic run say "synthetic stand-in, not a reproduction".
    """
    return _action_table(
        run_dir, paper_table(3),
        metrics=[("top1", "ours top-1"), ("top5", "ours top-5")],
        paper_cols={"top1": "paper top-1", "top5": "paper top-5"},
        title="Table 3 — Moments in Time action classification (top-1/top-5 accuracy)",
        caption_metrics="top-k accuracy of the single label over all evaluated videos.",
        keep=("modality",),
    )


def table4(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """Table 4: Charades mAP, paper rows beside ours.

    Args:
        run_dir: a ``vidsage run`` directory on Charades features
            (``action_datasets.read_charades``), or on its synthetic stand-in.

    Returns:
        ``(df, caption)`` with ``method``, ``pre-train``, ``modality``,
        ``paper mAP (as printed)``, ``head``, ``paper mAP`` (NaN for the paper's "48.7.6"), ours
        ``mean_ap`` (exact per-class AP mean, Charades' official metric) and the paper's
        ``bucketed_map`` as mean/std, ``n seeds``, ``note``.
    """
    paper = paper_table(4).rename(columns={"pretrain": "pre-train"})
    paper["paper mAP (as printed)"] = paper["mAP_printed"]
    df, caption = _action_table(
        run_dir, paper,
        metrics=[("mean_ap", "ours mAP (exact per-class AP, `mean_ap`)"),
                 ("bucketed_map", "ours bucketed mAP (paper §4.1 `bucketed_map`)")],
        paper_cols={"mAP": "paper mAP"},
        title="Table 4 — Charades action classification (mAP)",
        caption_metrics="`mean_ap` is the mean over classes of exact average precision (the "
                        "metric of Charades' official classification evaluation); `bucketed_map` "
                        "is the paper's §4.1 bucketed mAP.",
        keep=("pre-train", "modality", "paper mAP (as printed)"),
    )
    return df, caption + ("\n\nThe paper prints \"48.7.6\" for `2-stream [1]`; the string is kept in "
                          "`paper mAP (as printed)` and its numeric `paper mAP` is NaN.")


# ---------------------------------------------------------------------------------------------
# Table 1: accuracy vs latency
# ---------------------------------------------------------------------------------------------

LATENCY_STAGES = ("decode", "features", "objects", "attach", "gnn", "total")


def _latency_for(latency: Mapping[str, Any] | None, variant: str) -> dict[str, Any] | None:
    """The per-stage breakdown of one method, as ``{stage: seconds, "device", "clip_seconds"}``.

    Accepts the flat dict of ``vidsage_core.video.latency_breakdown`` (``decode_s``,
    ``features_s``, ``objects_s``, ``attach_<v>_s``, ``gnn_<v>_s``, ``total_<v>_s``, ``device``,
    ``duration_s``, ``gnn_timed``), ``{method: {stage: s, ...}}`` (keys like "VidSage"/"lite"),
    or one ``{stage: s, ...}`` breakdown carrying its own ``"variant"``.
    """
    if not latency:
        return None
    if "decode_s" in latency:
        v = variant
        out: dict[str, Any] = {
            "decode": latency.get("decode_s"),
            "features": latency.get("features_s"),
            # LiteVidSage builds no object sets: the stage does not exist for it.
            "objects": latency.get("objects_s") if v == "vidsage" else None,
            "attach": latency.get(f"attach_{v}_s"),
            "gnn": latency.get(f"gnn_{v}_s"),
            "total": latency.get(f"total_{v}_s"),
            "device": latency.get("device", ""),
            "clip_seconds": latency.get("duration_s"),
        }
        if "gnn_timed" in latency and v not in latency["gnn_timed"]:
            out["_note"] = "GNN/attach not timed (no trained run given): total stops before the GNN"
        return out
    aliases = {"lite": {"lite", "litevidsage"}, "vidsage": {"vidsage"}}[variant]
    for key, value in latency.items():
        if isinstance(value, Mapping) and str(key).lower().replace("-", "").replace("_", "") in aliases:
            return dict(value)
    own = str(latency.get("variant", latency.get("method", ""))).lower().replace("-", "")
    if own in aliases and any(s in latency for s in LATENCY_STAGES):
        return dict(latency)
    return None


def table1(runs: Mapping[str, str | Path], latency: Mapping[str, Any] | None = None,
           metric: str = "bucketed_map", head: str = "logistic") -> tuple[pd.DataFrame, str]:
    """Table 1: accuracy (mean mAP over the datasets actually run) vs per-stage latency.

    Args:
        runs: dataset name -> run directory, e.g. ``{"youtube8m": ..., "charades": ...}``; the
            accuracy is averaged over exactly these datasets (the caption names them).
        latency: per-stage latency in seconds: the dict returned by
            ``vidsage_core.video.latency_breakdown`` (``decode_s``, ``features_s``,
            ``objects_s``, ``attach_<variant>_s``, ``gnn_<variant>_s``, ``total_<variant>_s``,
            ``device``, ``duration_s``), or ``{"VidSage": breakdown, "LiteVidSage": breakdown}``
            with keys among ``decode, features, objects, attach, gnn, total, device,
            clip_seconds``. None or a method missing: its latency cells are NaN and the note says
            "latency not measured". LiteVidSage has no objects stage (NaN).
        metric: which measured mAP to average (default the paper's ``bucketed_map``).
        head: the classification layer whose scores are averaged (default ``logistic``, "a
            classification layer" as in the paper). The fine-tuned rows (protocol "finetune",
            unsupervised init, default preset) are used; a run without them contributes its
            linear-probe rows, named in ``protocol`` and ``note``.

    Returns:
        ``(df, caption)``: rows VidSage, LiteVidSage with ``paper mAP``, ``paper latency (s)``,
        ``ours mAP (mean over datasets)``, per-dataset ``ours mAP <dataset> mean/std``,
        ``protocol`` (which rows each dataset's mAP comes from), latency
        per stage ``ours <stage> (s)``, ``device``, ``clip seconds``, ``note``.
    """
    if not runs:
        raise ValueError("table1: `runs` is empty; give at least one dataset -> run directory")
    loaded = {name: load_run_metrics(d) for name, d in runs.items()}
    paper = pd.DataFrame(PAPER_TABLE1).set_index("method")
    table = []
    for variant, method in (("vidsage", "VidSage"), ("lite", "LiteVidSage")):
        row: dict[str, Any] = {"method": method, "paper mAP": paper.loc[method, "mAP"],
                               "paper latency (s)": paper.loc[method, "latency_s"]}
        per_dataset, notes, used, ran = [], [], [], []
        for name, run in loaded.items():
            sel, protocol = _select(run["rows"], variant, head, **FINETUNED), "finetune"
            if not sel:  # runs without the fine-tuning protocol: their probe rows, said so
                sel, protocol = _select(run["rows"], variant, head, protocol="probe"), "probe"
                if sel:
                    notes.append(f"{name}: no fine-tuned rows, linear-probe rows used")
            mean, std, n = aggregate(sel, metric)
            row[f"ours mAP {name} mean"], row[f"ours mAP {name} std"] = mean, std
            if n == 0:
                notes.append(f"{variant}-{head} not in {name} run")
            else:
                per_dataset.append(mean)
                used.append(f"{name}: {PROTOCOL_LABEL[protocol]}")
                ran.append(name)
            if run["provenance"].get("synthetic") and n:
                notes.append(f"{name}: {SYNTHETIC_NOTE}")
        row["protocol"] = "; ".join(used)
        row["ours mAP (mean over datasets)"] = float(np.mean(per_dataset)) if per_dataset else math.nan
        row["datasets averaged"] = ", ".join(ran)
        lat = _latency_for(latency, variant)
        for stage in LATENCY_STAGES:
            value = None if lat is None else lat.get(stage)
            row[f"ours {stage} (s)"] = math.nan if value is None else float(value)
        row["device"] = "" if lat is None else str(lat.get("device", ""))
        clip = None if lat is None else lat.get("clip_seconds", lat.get("video_seconds"))
        row["clip seconds"] = math.nan if clip is None else float(clip)
        if lat is None:
            notes.append("latency not measured")
        elif lat.get("_note"):
            notes.append(lat["_note"])
        row["note"] = "; ".join(notes)
        table.append(row)
    df = pd.DataFrame(table)
    names = ", ".join(f"{name} ({'synthetic' if run['provenance'].get('synthetic') else 'real'}, "
                      f"`{run['provenance'].get('dataset', '?')}`)" for name, run in loaded.items())
    lines = [
        f"Table 1 — accuracy vs latency: mAP averaged over the datasets run here ({names}) and "
        "per-stage latency of embedding one video on the measured device.",
        "",
        f"Paper: mAP averaged over YouTube-8M, Moments in Time and Charades; latency for a 5 s video "
        f"on one V100. Ours: `{metric}` (%) of the fine-tuned rows (the paper's protocol: the "
        f"pre-trained GNN with a `{head}` classification layer trained end to end; a run without "
        "them falls back to its linear-probe rows and `protocol` says so), mean over seeds per "
        "dataset, then "
        "the plain mean over the datasets listed in `datasets averaged` (fewer datasets than the "
        "paper's three is a different average, not comparable). Latency in seconds per stage "
        "(decode, frame features, objects, attaching the node to the graph, GNN forward, total) "
        "from `vidsage_core.video.latency_breakdown`; `clip seconds` is the length of the timed clip.",
        "",
    ] + [f"Provenance ({name}): " + describe_provenance(run["provenance"]) for name, run in loaded.items()]
    return df, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Label efficiency (beyond the paper)
# ---------------------------------------------------------------------------------------------

#: GAP points by which the best LiteVidSage/VidSage row must beat every baseline at 1 % and 5 %
#: of the labels (issue 10's label-efficiency target).
LABEL_EFFICIENCY_TARGET = 2.0


def _kind(row: Mapping[str, Any]) -> str:
    """"baseline", "probe" or "finetune"."""
    protocol = row_field(row, "protocol")
    return "baseline" if protocol == "none" else protocol


def label_efficiency_curves(rows: Sequence[dict], metric: str = "gap") -> pd.DataFrame:
    """One line per (method, label fraction): the metric (%) per seed, mean and sample std.

    Frame-level rows (all labels only) are left out; every other method of the run is a line.

    Returns:
        DataFrame with ``method``, ``kind`` ("baseline" / "probe" / "finetune"), ``label
        fraction``, ``num labelled``, ``values`` (list of per-seed values, %), ``mean``, ``std``
        (ddof=1, NaN for one seed) and ``n seeds``, sorted by kind, method and fraction.
    """
    groups: dict[tuple[str, float], list[dict]] = {}
    for r in rows:
        if r.get("variant") == "frame" or r.get(metric) is None:
            continue
        groups.setdefault((r["method"], row_field(r, "label_fraction")), []).append(r)
    out = []
    for (method, fraction), sel in groups.items():
        mean, std, n = aggregate(sel, metric)
        out.append({"method": method, "kind": _kind(sel[0]), "label fraction": fraction,
                    "num labelled": sel[0].get("num_labelled"),
                    "values": [100.0 * float(r[metric]) for r in sel],
                    "mean": mean, "std": std, "n seeds": n})
    order = {"baseline": 0, "probe": 1, "finetune": 2}
    df = pd.DataFrame(out, columns=["method", "kind", "label fraction", "num labelled", "values",
                                    "mean", "std", "n seeds"])
    df["_k"] = df["kind"].map(order)
    return df.sort_values(["_k", "method", "label fraction"]).drop(columns="_k").reset_index(drop=True)


def _is_ours(method: str) -> bool:
    return method.startswith(("litevidsage", "vidsage"))


def label_efficiency_verdict(curves: pd.DataFrame) -> pd.DataFrame:
    """Per label fraction: the best LiteVidSage/VidSage row against the best baseline.

    Returns:
        DataFrame with ``label fraction``, ``best ours``, its ``mean``/``std``, ``best
        baseline``, its ``mean``/``std``, ``margin`` (points), ``separated`` (ours mean − 2 std
        above baseline mean + 2 std; None when either side has a single seed, so no interval)
        and ``target met`` (margin >= LABEL_EFFICIENCY_TARGET), one row per fraction that has both.
    """
    out = []
    for fraction, at in curves.groupby("label fraction"):
        ours = at[at["method"].map(_is_ours)]
        base = at[at["kind"] == "baseline"]
        if ours.empty or base.empty:
            continue
        o, b = ours.loc[ours["mean"].idxmax()], base.loc[base["mean"].idxmax()]
        one_seed = math.isnan(o["std"]) or math.isnan(b["std"])  # a sample std needs 2 seeds
        margin = o["mean"] - b["mean"]
        out.append({"label fraction": fraction, "best ours": o["method"], "ours mean": o["mean"],
                    "ours std": o["std"], "best baseline": b["method"], "baseline mean": b["mean"],
                    "baseline std": b["std"], "margin (points)": margin,
                    "separated (2 std)": None if one_seed else
                    bool(o["mean"] - 2 * o["std"] > b["mean"] + 2 * b["std"]),
                    "target met": bool(margin >= LABEL_EFFICIENCY_TARGET)})
    return pd.DataFrame(out)


def _separation(separated: bool | None) -> str:
    if separated is None:
        return "one seed, no interval"
    return "separated at 2 std" if separated else "not separated at 2 std"


def label_efficiency(run_dir: str | Path, metric: str = "gap") -> tuple[pd.DataFrame, str]:
    """The label-efficiency table: every method's metric at each fraction of the labels.

    Args:
        run_dir: a ``vidsage run`` directory with several ``label_fractions``.
        metric: a measured metric (default YouTube-8M's ``gap``).

    Returns:
        ``(df, caption)``: one row per method with ``method``, ``kind`` and, per label fraction
        ``f``, ``"ours <METRIC> @ f mean"``/``"... std"`` (%), then ``n seeds``. The caption
        carries the provenance, the number of labelled videos per fraction, and per fraction
        the best LiteVidSage/VidSage row against the best baseline (the issue's target:
        ``LABEL_EFFICIENCY_TARGET`` points at 1 % and 5 %), generated from the numbers.
    """
    run = load_run_metrics(run_dir)
    rows, prov = run["rows"], run["provenance"]
    curves = label_efficiency_curves(rows, metric)
    if curves.empty:
        raise ValueError(f"{run_dir}: no rows with metric {metric!r}")
    fractions = sorted(curves["label fraction"].unique())
    label = metric.upper() if metric == "gap" else metric
    table = []
    for (method, kind), sel in curves.groupby(["method", "kind"], sort=False):
        row: dict[str, Any] = {"method": method, "kind": kind}
        for f in fractions:
            at = sel[sel["label fraction"] == f]
            stem = f"ours {label} @ {f:g}"
            row[f"{stem} mean"] = float(at["mean"].iloc[0]) if len(at) else math.nan
            row[f"{stem} std"] = float(at["std"].iloc[0]) if len(at) else math.nan
        row["n seeds"] = int(sel["n seeds"].max())
        table.append(row)
    df = pd.DataFrame(table)
    synthetic = bool(prov.get("synthetic"))
    labelled = prov.get("num_labelled") or {}
    lines = [
        f"Label efficiency — {label} (%) against the fraction of train+val labels given to heads, "
        f"baselines and fine-tuning, on `{prov.get('dataset', '?')}` "
        f"({'SYNTHETIC stand-in, not a reproduction' if synthetic else 'real data'}, "
        f"{prov.get('num_videos', '?')} videos, seeds {list(prov.get('seeds', []))}).",
        "",
        "Beyond the paper. The unsupervised pre-training always sees every train+val video "
        "without labels; at fraction f every labelled method reads only the labels of the same "
        "nested subset (" + str(prov.get("label_subset_rule", "nested subsets")) + "). Labelled "
        "videos per fraction: " + (", ".join(f"{float(k):g}: {v}" for k, v in labelled.items())
                                   or "not recorded") + ". Cells: mean ± sample std (ddof=1) over "
        "seeds; kind `baseline` = protocol none (no GNN), `probe` = heads on frozen embeddings, "
        "`finetune` = the paper's §4.2 protocol.",
        "",
        "Provenance: " + describe_provenance(prov),
        "",
    ]
    verdict = label_efficiency_verdict(curves)
    for _, v in verdict.iterrows():
        f = v["label fraction"]
        target = ""
        if f in (0.01, 0.05):
            target = (f" Target (≥ {LABEL_EFFICIENCY_TARGET:g} points): "
                      f"{'met' if v['target met'] else 'NOT met'}.")
        lines.append(
            f"- {f:g} of the labels: best LiteVidSage/VidSage row `{v['best ours']}` "
            f"{v['ours mean']:.2f} vs best baseline `{v['best baseline']}` "
            f"{v['baseline mean']:.2f}: {v['margin (points)']:+.2f} points; "
            f"{_separation(v['separated (2 std)'])}.{target}")
    if synthetic:
        lines += ["", f"All measured cells: {SYNTHETIC_NOTE}."]
    return df, "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# Retrieval (beyond the paper): label-sharing nearest neighbours of each representation
# ---------------------------------------------------------------------------------------------
#: variant in metrics.json -> what the rows retrieve with, in table order
_RETRIEVAL_FEATURES = {
    "raw": "raw features x (L2-normalised)",
    "sgc": "non-learned smoothing [x, ½x + ½·mean_kNN(x)]",
    "lite": "LiteVidSage embeddings z",
    "lite+raw": "LiteVidSage [x ‖ z]",
    "vidsage": "VidSage embeddings z",
    "vidsage+raw": "VidSage [x ‖ z]",
}
_RETRIEVAL_METRICS: list[tuple[str, str]] = [
    ("retrieval_precision_at_10", "precision@10"),
    ("retrieval_map_at_100", "mAP@100"),
]


def retrieval_table(run_dir: str | Path) -> tuple[pd.DataFrame, str]:
    """Label-sharing retrieval of every representation of a run, mean ± std over seeds.

    Test videos query the train+val videos by cosine (exact FAISS search); a hit is relevant
    when it shares at least one label with the query. ``precision@10`` is the share of relevant
    hits among the first 10, ``mAP@100`` the mean AP@100 with denominator ``min(R, 100)``
    (``metrics.retrieval_precision_at_k`` / ``retrieval_map_at_k``). The scores are computed by
    ``vidsage run`` (``retrieval_*`` keys of ``metrics.json`` rows); this only formats them.

    Returns:
        ``(DataFrame, caption)``: one row per representation present in the run, columns
        ``method``, ``retrieves with``, ``<metric> mean``/``std`` (percent), ``n seeds``; the
        caption carries the provenance and names the best representation.
    """
    metrics = load_run_metrics(run_dir)
    rows, prov = metrics["rows"], metrics["provenance"]
    out = []
    for variant, features in _RETRIEVAL_FEATURES.items():
        per_seed: dict[int, dict] = {}
        for r in rows:  # the scores belong to the features, not the head: one row per seed
            if r.get("variant") == variant and r.get("retrieval_map_at_100") is not None:
                per_seed.setdefault(int(r.get("seed", 0)), r)
        if not per_seed:
            continue
        name = {"raw": "raw", "sgc": "smoothing (sgc)"}.get(variant) or \
            variant.replace("lite", "LiteVidSage").replace("vidsage", "VidSage", 1)
        out.append({"method": name, "retrieves with": features,
                    **_measured(list(per_seed.values()), _RETRIEVAL_METRICS)})
    if not out:
        raise ValueError(f"{Path(run_dir) / 'metrics.json'}: no retrieval scores (rows with "
                         "'retrieval_map_at_100'); the run was made without labels, with --no-eval, "
                         "or before retrieval scores existed: run it again")
    df = pd.DataFrame(out)
    labelled = prov.get("labelled") or {}
    best = df.loc[df["mAP@100 mean"].idxmax()]
    caption = (
        "Retrieval: test videos query train+val videos by cosine; a hit is relevant when it "
        "shares a label (beyond the paper)\n\n"
        f"Queries: {labelled.get('test', '?')} labelled test videos; database: "
        f"{labelled.get('trainval', '?')} labelled train+val videos. precision@10 = share of "
        "the 10 nearest videos sharing at least one label with the query; mAP@100 = mean "
        "AP@100 with denominator min(R, 100), R = the query's label-sharing videos in the "
        "database. Mean ± sample std over seeds, in percent; exact search (FAISS IndexFlatIP on "
        f"L2-normalised vectors). Best mAP@100: {best['method']} "
        f"({best['mAP@100 mean']:.2f}).\n\n"
        f"Provenance: {describe_provenance(prov)}")
    return df, caption
