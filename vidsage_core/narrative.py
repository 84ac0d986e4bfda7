"""The notebooks' prose: a few sentences of Markdown per step, every number read from the run.

Each ``summary_*`` function takes what a notebook has just computed (a run's ``metrics.json``
dict, graph statistics, a latency breakdown) and returns Markdown that states the result: the
headline comparison, the sign and size of each difference with its interval, which rows ran on
synthetic data and under which protocol. Notebooks show it with
``display(Markdown(narrative.summary_xxx(...)))``; :func:`headline_findings` opens
``results/README.md``.

Conventions used in every sentence:

* a method's score is the mean ± sample std (ddof=1) over seeds, in percent (points);
* a difference between two methods run with the same seeds is the mean ± std of the per-seed
  differences (paired); otherwise the difference of the means ± the root sum of squares of the
  two stds;
* "beats" / "loses to" only when the interval (mean ± std) excludes 0, else "is level with";
* rows may carry ``protocol`` ("probe": head on frozen embeddings, "finetune": encoder trained
  with the head, "none": no pretrained encoder), ``label_fraction`` and, for fine-tune rows,
  ``init`` ("unsupervised" or "random"); rows written before those fields existed are GNN rows
  under "probe" (baseline rows under "none") with label fraction 1.0.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from vidsage_core import paths
from vidsage_core.deviations import DEVIATIONS
from vidsage_core.tables import paper_table
from vidsage_core.utils import load_json

__all__ = [
    "row_protocol",
    "row_label_fraction",
    "method_label",
    "compare",
    "summary_features",
    "summary_graphs",
    "summary_training",
    "differences_from_paper",
    "summary_table1",
    "summary_table2",
    "summary_action_table",
    "headline_findings",
]

#: variants whose rows come from a trained GNN encoder.
GNN_VARIANTS = ("lite", "vidsage", "lite+raw", "vidsage+raw")
_VARIANT_NAME = {"raw": "raw features", "frame": "frame features", "sgc": "SGC smoothing (no learning)",
                 "lite": "LiteVidSage", "vidsage": "VidSage", "lite+raw": "LiteVidSage ⊕ raw",
                 "vidsage+raw": "VidSage ⊕ raw", "sign": "SIGN [x, Ax, A²x]",
                 "cs": "Correct & Smooth on raw", "lp": "label propagation"}
_HEAD_NAME = {"logistic": "logistic regression", "hinge": "hinge loss",
              "moe": "mixture of 2 experts"}
_PROTOCOL_NAME = {"probe": "probe", "finetune": "fine-tune", "none": "no encoder"}
#: metric key -> name in prose.
METRIC_NAME = {"gap": "GAP", "bucketed_map": "bucketed mAP (paper §4.1)", "map": "mAP@20",
               "hit_at_one": "hit@1", "perr": "PERR", "top1": "top-1", "top5": "top-5",
               "mean_ap": "mAP", "retrieval_precision_at_10": "retrieval precision@10",
               "retrieval_map_at_100": "retrieval mAP@100"}
SYNTHETIC = "SYNTHETIC stand-in data, not a reproduction"


# ---------------------------------------------------------------------------------------------
# Rows, groups and differences
# ---------------------------------------------------------------------------------------------

def row_protocol(row: Mapping[str, Any]) -> str:
    """The row's protocol; rows from before the field: "probe" for GNN rows, else "none"."""
    if row.get("protocol"):
        return str(row["protocol"])
    return "probe" if row.get("variant") in GNN_VARIANTS else "none"


def row_label_fraction(row: Mapping[str, Any]) -> float:
    """The fraction of training labels the row's head saw (1.0 for rows without the field)."""
    value = row.get("label_fraction")
    return 1.0 if value is None else float(value)


def method_label(row: Mapping[str, Any], with_protocol: bool = True) -> str:
    """A reader's name for a row's method, e.g. "VidSage + logistic regression (probe)"."""
    variant = row.get("variant")
    name = _VARIANT_NAME.get(variant) if variant else None
    head = _HEAD_NAME.get(row.get("head"), row.get("head"))
    if name and row.get("head") == "none":  # label propagation: no head, only the labels
        text = name
    else:
        text = f"{name} + {head}" if name and head else str(row.get("method", "?"))
    protocol = row_protocol(row)
    if with_protocol and protocol != "none":
        detail = _PROTOCOL_NAME.get(protocol, protocol)
        if row.get("init"):
            detail += f", {row['init']} init"
        if row.get("preset") and row["preset"] != "default":
            detail += f", {row['preset']}"
        text += f" ({detail})"
    return text


def _key(row: Mapping[str, Any]) -> tuple:
    return (row.get("method"), row_protocol(row), row_label_fraction(row), row.get("init"))


def _groups(rows: Sequence[Mapping[str, Any]], label_fraction: float | None = 1.0) -> dict[tuple, list]:
    """Rows grouped by (method, protocol, label fraction, init), in first-seen order."""
    out: dict[tuple, list] = {}
    for r in rows:
        if label_fraction is not None and not math.isclose(row_label_fraction(r), label_fraction):
            continue
        out.setdefault(_key(r), []).append(r)
    return out


def _values(rows: Sequence[Mapping[str, Any]], metric: str) -> dict[int, float]:
    return {int(r.get("seed", i)): 100.0 * float(r[metric])
            for i, r in enumerate(rows) if r.get(metric) is not None and np.isfinite(float(r[metric]))}


def _mean_std(values: Sequence[float]) -> tuple[float, float, int]:
    v = np.asarray(list(values), dtype=np.float64)
    if v.size == 0:
        return math.nan, math.nan, 0
    return float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else math.nan, int(v.size)


def _pm(mean: float, std: float, digits: int = 2) -> str:
    return f"{mean:.{digits}f}" if not np.isfinite(std) else f"{mean:.{digits}f} ± {std:.{digits}f}"


def score(rows: Sequence[Mapping[str, Any]], metric: str = "gap") -> str:
    """"m ± s" of ``metric`` over the rows (percent), with the number of seeds."""
    mean, std, n = _mean_std(_values(rows, metric).values())
    return f"{_pm(mean, std)} ({n} seed{'s' if n != 1 else ''})"


def compare(rows_a: Sequence[Mapping[str, Any]], rows_b: Sequence[Mapping[str, Any]],
            metric: str = "gap") -> dict[str, Any]:
    """Difference a − b of ``metric`` in points: paired over seeds when both have the same seeds.

    Returns:
        dict with ``diff`` (mean), ``std`` (NaN when it cannot be computed), ``n`` (seeds),
        ``paired`` (bool) and ``verdict``: "beats", "loses to" or "is level with" (the interval
        mean ± std contains 0); with no std the sign alone decides.
    """
    va, vb = _values(rows_a, metric), _values(rows_b, metric)
    if not va or not vb:
        return {"diff": math.nan, "std": math.nan, "n": 0, "paired": False, "verdict": "n/a"}
    if set(va) == set(vb):
        d, s, n = _mean_std([va[k] - vb[k] for k in sorted(va)])
        paired = True
    else:
        ma, sa, na = _mean_std(va.values())
        mb, sb, nb = _mean_std(vb.values())
        d, n, paired = ma - mb, min(na, nb), False
        s = math.sqrt(sa**2 + sb**2) if np.isfinite(sa) and np.isfinite(sb) else math.nan
    if np.isfinite(s) and abs(d) <= s:
        verdict = "is level with"
    else:
        verdict = "beats" if d > 0 else "loses to" if d < 0 else "is level with"
    return {"diff": d, "std": s, "n": n, "paired": paired, "verdict": verdict}


def _difference_sentence(name_a: str, rows_a: Sequence, name_b: str, rows_b: Sequence,
                         metric: str) -> str:
    c = compare(rows_a, rows_b, metric)
    if c["verdict"] == "n/a":
        return f"{name_a} and {name_b} cannot be compared on {METRIC_NAME.get(metric, metric)}."
    how = (f"paired over {c['n']} seeds" if c["paired"] else f"unpaired, {c['n']} seeds") \
        if np.isfinite(c["std"]) else "one seed, no interval"
    size = _pm(abs(c["diff"]), c["std"])
    if c["verdict"] == "is level with":
        return (f"{name_a} is level with {name_b}: difference {c['diff']:+.2f} ± {c['std']:.2f} "
                f"{METRIC_NAME.get(metric, metric)} points ({how}), an interval that contains 0.")
    return (f"{name_a} {c['verdict']} {name_b} by {size} {METRIC_NAME.get(metric, metric)} "
            f"points ({how}).")


def _data_sentence(prov: Mapping[str, Any]) -> str:
    split = prov.get("split") or {}
    kind = SYNTHETIC if prov.get("synthetic") else "real data"
    return (f"Data: `{prov.get('dataset', '?')}` ({kind}), {prov.get('num_videos', '?')} videos, "
            f"{split.get('test', '?')} of them in the test split; seeds {list(prov.get('seeds', []))}.")


def _select(rows: Sequence[Mapping[str, Any]], variant: str, head: str = "logistic",
            protocol: str | None = None, init: str | None = None) -> list:
    return [r for r in rows if r.get("variant") == variant and r.get("head") == head
            and math.isclose(row_label_fraction(r), 1.0)
            and (protocol is None or row_protocol(r) == protocol)
            and (init is None or r.get("init") == init)]


def _protocol_sentence(rows: Sequence[Mapping[str, Any]]) -> str:
    used: dict[str, list[str]] = {}
    for r in rows:
        if r.get("variant") in GNN_VARIANTS:
            p = _PROTOCOL_NAME.get(row_protocol(r), row_protocol(r))
            if r.get("init"):
                p += f" ({r['init']} init)"
            names = used.setdefault(p, [])
            name = method_label(r, with_protocol=False)
            if name not in names:
                names.append(name)
    if not used:
        return ""
    parts = [f"{p}: {', '.join(n)}" for p, n in used.items()]
    return ("Protocol of each GNN row (probe = head fitted on frozen embeddings; fine-tune = "
            "encoder trained with the head): " + "; ".join(parts) + ".")


def _gnn_comparisons(rows: Sequence[Mapping[str, Any]], metric: str,
                     baseline: tuple[str, str] = ("raw", "logistic")) -> list[str]:
    """One sentence per GNN (variant, protocol, init) at label fraction 1 against the baseline."""
    base = _select(rows, *baseline)
    if not base:
        return []
    base_name = method_label(base[0])
    out = []
    for (method, protocol, frac, init), group in _groups(rows).items():
        if group[0].get("variant") not in GNN_VARIANTS or group[0].get("head") != baseline[1]:
            continue
        out.append(f"{method_label(group[0])} scores {score(group, metric)}; "
                   + _difference_sentence("it", group, base_name, base, metric))
    return out


def _finetune_sentences(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Fine-tune rows: unsupervised vs random initialisation, and fine-tune vs probe."""
    out = []
    for variant in ("lite", "vidsage"):
        unsup = _select(rows, variant, protocol="finetune", init="unsupervised")
        rand = _select(rows, variant, protocol="finetune", init="random")
        probe = _select(rows, variant, protocol="probe")
        name = _VARIANT_NAME[variant]
        if unsup and rand:
            out.append(_difference_sentence(f"Fine-tuning {name} from its unsupervised weights",
                                            unsup, "fine-tuning it from random weights", rand, metric)
                       + " This is what the unsupervised pre-training is worth under fine-tuning.")
        if unsup and probe:
            out.append(_difference_sentence(f"Fine-tuned {name}", unsup, f"the {name} probe",
                                            probe, metric))
    return out


def _label_efficiency_sentence(rows: Sequence[Mapping[str, Any]], metric: str) -> str:
    fractions = sorted({row_label_fraction(r) for r in rows} - {1.0})
    if not fractions:
        return ""
    smallest = fractions[0]
    sub = [r for r in rows if math.isclose(row_label_fraction(r), smallest)]
    base = [r for r in sub if r.get("variant") == "raw" and r.get("head") == "logistic"]
    parts = []
    for group in _groups(sub, label_fraction=smallest).values():
        if group[0].get("variant") in GNN_VARIANTS and base:
            parts.append(_difference_sentence(method_label(group[0]), group,
                                              method_label(base[0]), base, metric))
    text = (f"Label-efficiency rows were run at label fractions "
            f"{', '.join(f'{f:g}' for f in fractions)} (and 1).")
    if parts:
        text += f" With {smallest:g} of the training labels: " + " ".join(parts)
    return text


def _baseline_sentences(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Every non-GNN row group at label fraction 1 (other than raw logistic) against raw logistic.

    Baselines added later (label propagation, C&S, SIGN, ...) are covered without a change here.
    """
    log = _select(rows, "raw", "logistic")
    if not log:
        return []
    out = []
    for group in _groups(rows).values():
        r = group[0]
        if r.get("variant") in GNN_VARIANTS or (r.get("variant"), r.get("head")) == ("raw", "logistic"):
            continue
        out.append(_difference_sentence(method_label(r), group, "raw features + logistic regression",
                                        log, metric))
    return out


def _best_pair(rows: Sequence[Mapping[str, Any]], metric: str, head: str | None = None) -> tuple:
    """``(best GNN group, best baseline group)`` at label fraction 1 (each as :func:`_best`
    returns it, or None), among the rows with ``head`` when one is given."""
    rows = [r for r in rows if head is None or r.get("head") == head]
    return (_best([r for r in rows if r.get("variant") in GNN_VARIANTS], metric),
            _best([r for r in rows if r.get("variant") not in GNN_VARIANTS], metric))


def _strongest_baseline_sentence(rows: Sequence[Mapping[str, Any]], metric: str) -> str:
    """The best GNN row at label fraction 1 against the best non-GNN row: not only a weak baseline."""
    gnn, base = _best_pair(rows, metric)
    if not gnn or not base:
        return ""
    sentence = _difference_sentence(f"the best GNN row, {method_label(gnn[0][0])},", gnn[0], "it",
                                    base[0], metric)
    return (f"Against the strongest baseline, {method_label(base[0][0])} at "
            f"{score(base[0], metric)}, {sentence}")


def _same_head_sentences(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """Per head the GNN rows use, the best GNN row against the best baseline with that head: the
    comparison at equal head (a MoE head alone beats a logistic one on raw features). A pair that
    is already the strongest-baseline comparison is not said twice."""
    def keys(pair: tuple) -> list:
        return [_key(best[0][0]) if best else None for best in pair]

    out = []
    strongest = keys(_best_pair(rows, metric))
    gnn_heads = {r.get("head") for r in rows if r.get("variant") in GNN_VARIANTS}
    for head in [h for h in _HEAD_NAME if h in gnn_heads]:
        gnn, base = pair = _best_pair(rows, metric, head)
        if gnn and base and keys(pair) != strongest:
            out.append(f"With the same head ({_HEAD_NAME[head]}), "
                       + _difference_sentence(f"the best GNN row, {method_label(gnn[0][0])} at "
                                              f"{score(gnn[0], metric)},", gnn[0],
                                              f"the best baseline, {method_label(base[0][0])} at "
                                              f"{score(base[0], metric)}", base[0], metric))
    return out


def _baseline_and_protocol_sentences(rows: Sequence[Mapping[str, Any]], metric: str) -> list[str]:
    """What notebooks 03 and 05 both say after the GNN rows: each baseline against raw logistic,
    the best GNN row against the strongest baseline and against the best baseline with its
    head, the fine-tuning comparisons, which protocol each row used and the label-efficiency
    verdict."""
    out = _baseline_sentences(rows, metric)
    out += [s for s in (_strongest_baseline_sentence(rows, metric),) if s]
    out += _same_head_sentences(rows, metric)
    out += _finetune_sentences(rows, metric)
    out += [s for s in (_protocol_sentence(rows), _label_efficiency_sentence(rows, metric)) if s]
    return out


def _best(rows: Sequence[Mapping[str, Any]], metric: str) -> tuple[list, float] | None:
    best = None
    for group in _groups(rows).values():
        mean = _mean_std(_values(group, metric).values())[0]
        if np.isfinite(mean) and (best is None or mean > best[1]):
            best = (group, mean)
    return best


# ---------------------------------------------------------------------------------------------
# One summary per notebook
# ---------------------------------------------------------------------------------------------

def summary_features(videos: Any, split_sizes: Mapping[str, int]) -> str:
    """Notebook 01: what was read, what was skipped, the labels and the split.

    Args:
        videos: a ``VideoSet`` (``len``, ``source``, ``synthetic``, ``skipped``, ``labels``
            [N, C] sparse, ``num_classes``, ``rgb``/``audio`` [N, D]).
        split_sizes: ``{"train": n, "val": n, "test": n}``.
    """
    n = len(videos)
    labels = videos.labels.tocsr()
    per_video = np.diff(labels.indptr)
    used = int((np.asarray(labels.sum(axis=0)).ravel() > 0).sum())
    skipped = videos.skipped.counts() if getattr(videos, "skipped", None) is not None else {}
    dims = " + ".join(f"{name} {getattr(videos, name).shape[1]}" for name in ("rgb", "audio")
                      if getattr(videos, name, None) is not None)
    kind = SYNTHETIC if videos.synthetic else "real data"
    text = [f"Read **{n:,} videos** ({kind}) from `{paths.relative(videos.source)}`: features {dims}."]
    bad = {k: v for k, v in skipped.items() if v}
    text.append("No record was skipped." if not bad else
                "Skipped and reported: " + ", ".join(f"{v} {k}" for k, v in bad.items()) + ".")
    if n:
        text.append(f"Labels: {used:,} of {videos.num_classes:,} classes occur; "
                    f"{per_video.mean():.2f} labels per video on average "
                    f"({int((per_video == 0).sum())} videos unlabelled).")
    text.append("Split by a hash of the video id: " + ", ".join(
        f"{split_sizes[k]:,} {k}" for k in ("train", "val", "test") if k in split_sizes)
        + " videos; the test videos are never in a training graph.")
    return " ".join(text)


def summary_graphs(stats: Mapping[str, Mapping[str, Any]]) -> str:
    """Notebook 02: size, degree, connectivity and label homophily of each graph.

    Args:
        stats: graph name -> :func:`vidsage_core.graph.graph_stats` dict (with labels).
    """
    out = []
    for name, s in stats.items():
        text = (f"**{name}**: {s['num_nodes']:,} videos, {s['num_edges']:,} edges, degree mean "
                f"{s['degree_mean']:.1f} (median {s['degree_median']:g}, max {s['degree_max']}), "
                f"{s['num_components']} connected component{'s' if s['num_components'] != 1 else ''}"
                f" (largest {s['largest_component']:,}), {s['isolated_nodes']} isolated.")
        if "homophily" in s and np.isfinite(s["homophily"]):
            rnd = s.get("homophily_random_pairs")
            text += f" {100 * s['homophily']:.1f}% of its edges join two videos sharing a label"
            if rnd is not None and np.isfinite(rnd):
                text += (f", against {100 * rnd:.1f}% for random pairs "
                         f"({s['homophily'] / rnd:.1f}x)" if rnd > 0 else "")
            text += "."
        out.append(text)
    names = list(stats)
    if len(names) == 2 and all("homophily" in stats[n] for n in names):
        a, b = names
        d = 100 * (stats[b]["homophily"] - stats[a]["homophily"])
        out.append(f"{b} changes label homophily by {d:+.1f} points relative to {a}: "
                   + ("its object edges join more same-label videos." if d > 0 else
                      "its object edges join fewer same-label videos than the visual kNN does."))
    return "\n\n".join(out)


def summary_training(metrics: Mapping[str, Any], run_dir: str | Path | None = None,
                     metric: str = "gap") -> str:
    """Notebook 03: every method's score, each GNN row against raw logistic, the training losses.

    Args:
        metrics: a run's ``metrics.json`` dict (``rows``, ``provenance``).
        run_dir: the run directory, to read the training histories (``<variant>/seed*/history.json``).
        metric: the metric compared (default YouTube-8M's GAP).
    """
    rows, prov = metrics["rows"], metrics["provenance"]
    lines = [_data_sentence(prov)]
    best = _best(rows, metric)
    if best:
        lines.append(f"Best row on {METRIC_NAME.get(metric, metric)}: {method_label(best[0][0])}, "
                     f"{score(best[0], metric)}.")
    lines += _gnn_comparisons(rows, metric)
    lines += _baseline_and_protocol_sentences(rows, metric)
    if run_dir is not None:
        losses = []
        for variant in ("lite", "vidsage"):
            hist = sorted(Path(run_dir).glob(f"{variant}/seed*/history.json"))
            firsts, lasts = [], []
            for h in hist:
                steps = load_json(h)
                if steps:
                    firsts.append(steps[0]["loss"])
                    lasts.append(steps[-1]["loss"])
            if firsts:
                losses.append(f"{_VARIANT_NAME[variant]} {np.mean(firsts):.2f} → {np.mean(lasts):.2f}")
        if losses:
            lines.append("Unsupervised training loss, first → last step (mean over seeds): "
                         + "; ".join(losses) + ".")
    if prov.get("synthetic"):
        lines.append(f"Every row here ran on {SYNTHETIC}.")
    return "\n\n".join(lines)


def _saved_train_config(run_dir: Path) -> dict[str, Any] | None:
    for path in sorted(run_dir.glob("*/seed*/config.json")):
        saved = load_json(path)
        return saved.get("config", saved)
    return None


def _saved_finetune_config(run_dir: Path) -> dict[str, Any] | None:
    for path in sorted(run_dir.glob("*/seed*/finetune-f1/config.json")):
        return load_json(path).get("config")
    return None


def differences_from_paper(run_dir: str | Path) -> str:
    """Notebook 03: a Markdown table of the paper's setting, this run's value and the reason.

    Values are read from the run's saved ``config.json`` (RunConfig) and its first
    ``<variant>/seed*/config.json`` (TrainConfig) and all-labels fine-tuning
    (FinetuneConfig); reasons from ``deviations.DEVIATIONS``.
    """
    run_dir = Path(run_dir)
    configs = {"RunConfig": load_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else None,
               "TrainConfig": _saved_train_config(run_dir),
               "FinetuneConfig": _saved_finetune_config(run_dir)}
    lines = ["| setting | paper | this run | why (measured) |", "|---|---|---|---|"]
    for d in DEVIATIONS:
        saved = configs.get(d.config)
        if saved is None or d.field not in saved:
            value = "(not in this run)"
        else:
            v = saved[d.field]
            value = f"`{v}`" + (" (as in the paper)" if d.paper_value is not None and v == d.paper_value else "")
        lines.append(f"| `{d.setting}` | {d.paper} | {value} | {d.reason} |")
    return "\n".join(lines)


def summary_table1(metrics: Mapping[str, Any], latency: Mapping[str, Any] | None,
                   metric: str = "bucketed_map") -> str:
    """Notebook 04: accuracy and per-clip latency of each variant against the paper's Table 1."""
    paper = {r["method"]: r for r in paper_table(1).to_dict("records")}
    rows, prov = metrics["rows"], metrics["provenance"]
    out = [_data_sentence(prov)]
    for variant, name in (("vidsage", "VidSage"), ("lite", "LiteVidSage")):
        sel = _select(rows, variant, protocol="probe") or _select(rows, variant)
        if not sel:
            continue
        text = (f"{name}: {METRIC_NAME[metric]} {score(sel, metric)} against the paper's "
                f"{paper[name]['mAP']:.1f} (the paper averages three datasets; this is one)")
        total = (latency or {}).get(f"total_{variant}_s")
        if total is not None:
            text += (f"; one unseen {latency.get('duration_s', 5):g} s clip is embedded in "
                     f"{total:.3f} s on {latency.get('device', '?')} against the paper's "
                     f"{paper[name]['latency_s']:.1f} s on a V100")
            stages = [(s, latency.get(f"{s}_s")) for s in ("decode", "features")]
            stages += [(s, latency.get(f"{s}_{variant}_s")) for s in ("attach", "gnn")]
            if variant == "vidsage":
                stages.insert(2, ("objects", latency.get("objects_s")))
            known = [(s, v) for s, v in stages if v is not None]
            if known:
                slowest = max(known, key=lambda kv: kv[1])
                text += f", {100 * slowest[1] / total:.0f}% of it in the {slowest[0]} stage"
        out.append(text + ".")
    if prov.get("synthetic"):
        out.append(f"The accuracy rows ran on {SYNTHETIC}.")
    return "\n\n".join(out)


#: paper Table 2 method -> (variant, head) of our rows.
_PAPER_T2 = {"Logistic Regression": ("raw", "logistic"), "Hinge loss": ("raw", "hinge"),
             "Mixture-of-2-Experts": ("raw", "moe"), "LiteVidSage (Ours)": ("lite", "logistic"),
             "VidSage (Ours)": ("vidsage", "logistic")}


def _paper_t2() -> dict[str, float]:
    """The paper's Table 2 mAP per method name; the first "Mixture-of-2-Experts" is the one on mu."""
    paper = paper_table(2).drop_duplicates("method")
    return {m: float(v) for m, v in zip(paper["method"], paper["mAP"]) if m in _PAPER_T2}


def summary_table2(metrics: Mapping[str, Any], frame_metrics: Mapping[str, Any] | None = None,
                   metric: str = "gap", paper_exact_metrics: Mapping[str, Any] | None = None) -> str:
    """Notebook 05: Table 2's headline: does VidSage beat the video-level baselines, as claimed?

    Args:
        metrics: the video-level run's ``metrics.json`` dict.
        frame_metrics: the frame-level run's, if one was made.
        metric: our headline metric (YouTube-8M's GAP); the paper's own claim is checked with
            the paper's §4.1 bucketed mAP.
        paper_exact_metrics: the separate paper-exact run's (``pipeline.paper_exact_run``), if
            one was made; its rows are compared with this run's raw logistic head.
    """
    rows, prov = metrics["rows"], metrics["provenance"]
    p = _paper_t2()
    out = [_data_sentence(prov)]
    vid, log = _select(rows, "vidsage", protocol="probe"), _select(rows, "raw", "logistic")
    if vid and log:
        claim = p["VidSage (Ours)"] - p["Logistic Regression"]
        c = compare(vid, log, "bucketed_map")
        reproduced = c["verdict"] == "beats"
        out.append(
            f"**Headline.** The paper reports VidSage at {p['VidSage (Ours)']:.1f} mAP against "
            f"{p['Logistic Regression']:.1f} for logistic regression on the raw video-level "
            f"features ({claim:+.1f} points). Here, with the paper's bucketed mAP on the same split, "
            f"VidSage (probe) scores {score(vid, 'bucketed_map')} and logistic regression "
            f"{score(log, 'bucketed_map')}: a difference of {c['diff']:+.2f}"
            + (f" ± {c['std']:.2f}" if np.isfinite(c["std"]) else "")
            + f" points, so the paper's gain {'reproduces' if reproduced else 'does not reproduce'}"
            + " on this data.")
    out += _gnn_comparisons(rows, metric)
    if paper_exact_metrics is not None and log:
        out += _paper_exact_sentences(paper_exact_metrics, log, metric)
    best = _best(rows, metric)
    if best:
        out.append(f"The best row on {METRIC_NAME[metric]} is {method_label(best[0][0])} at "
                   f"{score(best[0], metric)}.")
    out += _baseline_and_protocol_sentences(rows, metric)
    if frame_metrics is None:
        out.append("The frame-level rows are empty: no frame-level data was given.")
    elif frame_metrics["provenance"].get("synthetic"):
        out.append(f"The frame-level rows ran on {SYNTHETIC}.")
    if prov.get("synthetic"):
        out.append(f"Every measured row above ran on {SYNTHETIC}.")
    return "\n\n".join(out)


def _paper_exact_sentences(exact: Mapping[str, Any], base: Sequence[Mapping[str, Any]],
                           metric: str) -> list[str]:
    """The separate paper-exact run's rows against the main run's raw logistic head."""
    out = []
    for variant in ("lite", "vidsage"):
        sel = [r for r in _select(exact["rows"], variant, protocol="finetune", init="unsupervised")
               if r.get("preset") == "paper-exact"]
        if sel:
            out.append(f"The paper-exact configuration of {_VARIANT_NAME[variant]} (§3.3-3.4 as "
                       f"written: full-width layers, no skip; a separate run, seeds "
                       f"{sorted({r['seed'] for r in sel})}) scores {score(sel, metric)}; "
                       + _difference_sentence("it", sel, method_label(base[0]), base, metric))
    return out


def summary_action_table(metrics: Mapping[str, Any], number: int) -> str:
    """Notebooks 06 and 07: Table 3 (Moments in Time, top-1) or Table 4 (Charades, mAP).

    Args:
        metrics: the run's ``metrics.json`` dict.
        number: 3 or 4.
    """
    metric = {3: "top1", 4: "mean_ap"}[number]
    paper = paper_table(number)
    pcol = {3: "top1", 4: "mAP"}[number]
    rows, prov = metrics["rows"], metrics["provenance"]
    out = [_data_sentence(prov)]
    reported = []
    for pname in ("VidSage", "LiteVidSage"):
        prow = paper[paper["method"].str.startswith(pname + " ") | (paper["method"] == pname)]
        if len(prow) and np.isfinite(float(prow[pcol].iloc[0])):
            reported.append(f"{pname} {float(prow[pcol].iloc[0]):.1f}")
    if reported:
        out.append(f"The paper reports {METRIC_NAME[metric]} " + " and ".join(reported)
                   + " on the real dataset.")
    out += _gnn_comparisons(rows, metric)
    out += _baseline_sentences(rows, metric)
    if prov.get("synthetic"):
        out.append(f"**Every measured number here ran on {SYNTHETIC}**: it shows that the "
                   "pipeline runs on this dataset's shape, not how VidSage performs on it; "
                   "the paper's numbers are not comparable with these.")
    return "\n\n".join(out)


def summary_retrieval(metrics: Mapping[str, Any]) -> str:
    """Notebook 09: label-sharing retrieval of each representation against the raw features.

    Retrieval scores belong to the features, not to a head, so each variant contributes one row
    per seed (the first row of that seed that carries the score).

    Args:
        metrics: the run's ``metrics.json`` dict.
    """
    rows, prov = metrics["rows"], metrics["provenance"]
    metric = "retrieval_map_at_100"
    by_variant: dict[str, list] = {}
    for r in rows:
        if r.get(metric) is not None and math.isclose(row_label_fraction(r), 1.0):
            seeds = by_variant.setdefault(r.get("variant"), [])
            if all(int(s.get("seed", 0)) != int(r.get("seed", 0)) for s in seeds):
                seeds.append(r)
    if not by_variant:
        return "No retrieval scores in this run (it was made without labels or with `--no-eval`)."
    names = {v: ("raw features" if v == "raw" else "the non-learned smoothing" if v == "sgc"
                 else method_label(rs[0], with_protocol=False)) for v, rs in by_variant.items()}
    out = [_data_sentence(prov)]
    best = max(by_variant, key=lambda v: _mean_std(_values(by_variant[v], metric).values())[0])
    out.append(f"Best {METRIC_NAME[metric]}: {names[best]}, {score(by_variant[best], metric)}.")
    if "raw" in by_variant:
        for v, rs in by_variant.items():
            if v != "raw":
                out.append(" ".join(_difference_sentence(names[v], rs, "raw features",
                                                         by_variant["raw"], m)
                                    for m in (metric, "retrieval_precision_at_10")))
    if prov.get("synthetic"):
        out.append(f"Every measured row above ran on {SYNTHETIC}.")
    return "\n\n".join(out)


def headline_findings(results_dir: str | Path = paths.RESULTS) -> str:
    """The opening of ``results/README.md``: what reproduces, what does not, by how much, where.

    Reads every ``runs/*/metrics.json`` under ``results_dir``; smoke runs are named as such.
    """
    results_dir = Path(results_dir)
    out = []
    runs = [(path, load_json(path)) for path in sorted((results_dir / "runs").glob("*/metrics.json"))]
    # Real data first: it is what the artifact reproduces; stand-ins only show the pipeline runs.
    # Among real runs, more seeds first: the artifact's run before a one-seed confirmation.
    runs.sort(key=lambda pm: (bool(pm[1].get("provenance", {}).get("synthetic")),
                              -len(pm[1].get("provenance", {}).get("seeds", []))))
    for path, metrics in runs:
        rows, prov = metrics.get("rows", []), metrics.get("provenance", {})
        vid, log = _select(rows, "vidsage", protocol="probe"), _select(rows, "raw", "logistic")
        if not rows or not vid or not log:
            continue
        kind = SYNTHETIC if prov.get("synthetic") else "real data"
        where = (f"On `{prov.get('dataset', path.parent.name)}` ({kind}, "
                 f"{prov.get('num_videos', '?')} videos, seeds {list(prov.get('seeds', []))}, "
                 f"run `{path.parent.name}`)")
        # The paper's protocol (§4.2: pre-trained, then fine-tuned with a classification layer)
        # when the run has it; the frozen-embedding probe otherwise.
        tuned = [r for r in _select(rows, "vidsage", protocol="finetune", init="unsupervised")
                 if r.get("method") == "vidsage-finetune"]
        ours, how = (tuned, "fine-tuned with a classification layer (the paper's §4.2 protocol)") \
            if tuned else (vid, "with a logistic head on its frozen embeddings (probe)")
        c = compare(ours, log, "gap")
        text = (f"{where}, VidSage {how} scores GAP {score(ours, 'gap')}; it {c['verdict']} "
                f"logistic regression on the raw features by {_pm(abs(c['diff']), c['std'])} GAP points")
        if not prov.get("synthetic") and "youtube8m" in str(prov.get("dataset", "")):
            p = _paper_t2()
            text += (f", where the paper claims VidSage beats it by "
                     f"{p['VidSage (Ours)'] - p['Logistic Regression']:.1f} mAP points "
                     f"({p['VidSage (Ours)']:.1f} vs {p['Logistic Regression']:.1f}): the direction "
                     f"{'reproduces' if c['verdict'] == 'beats' else 'does not reproduce'} here"
                     + (", the size does not" if c["verdict"] == "beats" and c["diff"] < 5 else ""))
        if tuned:
            cp = compare(vid, log, "gap")
            plural = {"beats": "beat", "loses to": "lose to", "is level with": "are level with"}
            text += (f". Its frozen embeddings with a logistic head (probe) "
                     f"{plural.get(cp['verdict'], cp['verdict'])} raw "
                     f"logistic regression by {_pm(abs(cp['diff']), cp['std'])} points")
        cat = _select(rows, "vidsage+raw", protocol="probe")
        if cat:
            cc = compare(cat, log, "gap")
            text += (f". Concatenating the embedding to the raw features (beyond the paper) "
                     f"{cc['verdict']} raw logistic regression by {_pm(abs(cc['diff']), cc['std'])} points")
        sgc = _select(rows, "sgc")
        if sgc:
            cs = compare(sgc, log, "gap")
            text += (f"; the non-learned smoothing baseline {cs['verdict']} it by "
                     f"{_pm(abs(cs['diff']), cs['std'])} points")
        strongest = _strongest_baseline_sentence(rows, "gap")
        if strongest:
            text += ". " + strongest.rstrip(".")
        if prov.get("synthetic"):
            text += ". These rows show the pipeline runs; they are not a reproduction"
        out.append(text + ".")
    if not out:
        return "No finished run with both VidSage and raw logistic rows was found under `runs/`."
    return "\n\n".join(out)
