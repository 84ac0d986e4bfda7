"""``vidsage run``: load -> split -> graph -> train -> embed -> evaluate, on any YouTube-8M data.

The protocol (the same for every row of Table 2):

* videos are split by a hash of their id (``data.split_by_id``): bucket 0 is the test set, the
  rest ("train+val") is what every method may see; defaults elsewhere were chosen on bucket 1.
* ``raw-*`` rows: downstream heads on the L2-normalised features.
* ``sgc-*`` rows (beyond the paper): the same heads on ``[x, ½x + ½·mean_kNN(x)]``, a non-learned
  smoothing over the 25 nearest train+val videos; a learned GNN earns its place only by beating it.
* ``sign-*``, ``labelprop``, ``cs-*`` rows (beyond the paper): a head on SIGN features
  ``[x, Ax, A²x]``, label propagation, and Correct & Smooth on each raw head's predictions, over
  the same kNN graph (:mod:`vidsage_core.baselines`). With the raw and sgc rows these are the
  baselines, ``"protocol": "none"``.
* ``litevidsage-*`` / ``vidsage-*`` rows: the GNN is trained unsupervised on the graph of the
  train+val videos; test videos are never in that graph: they are attached inductively
  (``infer.embed_unseen``) exactly as a new video would be. Two protocols use that model:
  ``"probe"`` (heads fitted on the frozen train+val embeddings, scored on the test embeddings)
  and ``"finetune"`` (the paper's §4.2: the pre-trained network plus a classification layer
  trained end to end, :mod:`vidsage_core.finetune`), with ablations (random initialisation, the
  paper-exact configuration) as rows of their own.

Label fractions: every labelled method may read the labels of a nested subset of the train+val
videos only (:func:`labelled_subset`, the same for every method and seed); the unsupervised
pre-training uses all train+val videos without labels, once per variant and seed.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as _dt
import json
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from vidsage_core import paths
from vidsage_core.baselines import sgc_features  # noqa: F401  (re-exported: pipeline's smoothing rows)
from vidsage_core.metrics import all_metrics
from vidsage_core.utils import load_json, resolve_device, save_json, to_jsonable

VARIANT_METHOD = {"raw": "raw", "frame": "frame", "sgc": "sgc", "sign": "sign", "cs": "cs",
                  "lp": "labelprop", "lite": "litevidsage", "vidsage": "vidsage",
                  "lite+raw": "litevidsage+raw", "vidsage+raw": "vidsage+raw"}
PROTOCOLS = ("probe", "finetune", "both")
#: Fine-tuning ablations: "random-init" (the same network trained from random weights, no
#: unsupervised stage) and "paper-exact" (finetune.paper_config on an encoder pre-trained with
#: finetune.paper_train_overrides).
FINETUNE_ABLATIONS = ("random-init", "paper-exact")


@dataclass(frozen=True)
class RunConfig:
    """Everything ``vidsage run`` needs; saved as ``config.json`` beside the results."""

    data: str = paths.YT8M_2018_GLOB  # TFRecord directory, file or glob
    out: str = str(paths.RUNS / "yt8m")
    dataset: str = "youtube8m-2018-sample"  # provenance label in tables
    level: str = "video"  # "video" or "frame" TFRecords
    variants: tuple[str, ...] = ("lite", "vidsage")
    # Object source for the VidSage graph. The shared YouTube-8M shards have no pixels and no
    # detections, so the default is a named proxy: k-means concepts over 8 sub-spaces of the
    # rgb+audio features (on validation its Jaccard edges beat audio-only concepts: homophily
    # 0.56 vs 0.30; see objects.FeatureCodebookProxy).
    objects: str = "proxy-subspace"
    # One seed and one head by default so that `vidsage run` finishes ~30,000 videos on a 2-core
    # CPU within 20 minutes; the paper's tables use 3 seeds and 3 heads (artifact_config).
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None  # None: the training module's measured default
    max_videos: int | None = None  # first N videos in file order (None: all)
    device: str = "auto"
    # Heads on the raw features (Table 2's video-level baselines); the GNN and smoothing rows use
    # gnn_heads, since every extra head costs a fit per seed and the paper reports one head.
    heads: tuple[str, ...] = ("logistic",)
    gnn_heads: tuple[str, ...] = ("logistic",)
    # Frame-level baselines (Table 2's first rows); they run only when level == "frame".
    frame_heads: tuple[str, ...] = ("logistic_average", "dbof", "lstm", "moe_mu_sigma_top5")
    modality: str = "rgb+audio"
    sgc_k: int = 25  # neighbours averaged by the non-learned smoothing baseline
    # Neighbour search for the graphs and the smoothing baseline: "exact", or an approximate
    # mode of graph.knn for millions of videos ("ivf-gemm": same candidates as FAISS IVF, built
    # as one matrix product per list; "ivf", "hnsw"). Test videos attach with the same mode.
    knn_mode: str = "exact"
    # Also fit the GNN heads on [x ‖ z] (beyond the paper): on the validation split z alone lost
    # to raw x (GAP 0.51 vs 0.63) while [x ‖ z] gained ~0.01, so both are reported.
    concat_raw: bool = True
    # Stop after writing the inputs of distributed training: OUT/features_trainval.npy and
    # OUT/<variant>/graph.pt (then `torchrun ... -m vidsage_core.train --features ... --graph ...`).
    prepare_only: bool = False
    baselines: bool = True  # raw-*, sgc-*, sign-*, labelprop and cs-* rows
    # "probe": heads on the frozen unsupervised embeddings (the rows before fine-tuning
    # existed); "finetune": the paper's §4.2 protocol (pre-trained GNN + classification layer
    # trained end to end); "both". The artifact runs "both" (artifact_config); probe alone is
    # the cheap default.
    protocol: str = "probe"
    # Fractions of the train+val labels that heads, baselines and fine-tuning may read (nested
    # prefixes of one fixed order of the videos, labelled_subset). 1.0: all labels.
    label_fractions: tuple[float, ...] = (1.0,)
    # Heads fitted at label fractions below 1 (on raw, sgc, sign, embeddings and [x ‖ z]): one
    # head keeps the label-efficiency rows at about the cost of the full-label logistic rows.
    fraction_heads: tuple[str, ...] = ("logistic",)
    # Below full labels every head, and fine-tuning, trains min(1/f, this) times its epochs:
    # epochs are passes over the labelled videos, so at 1 % the default 8 logistic epochs are 8
    # Adam steps. Validation GAP of the logistic head on raw x (labels: that fraction of the
    # train bucket, nested as labelled_subset; scored on the val bucket) by epochs:
    # 1 %: 8 -> 0.112, 24 -> 0.146, 80 -> 0.141, 240 -> 0.135, 800 -> 0.128;
    # 5 %: 8 -> 0.258, 24 -> 0.334, 80 -> 0.344; 25 %: 8 -> 0.502, 24 -> 0.518.
    # A factor of 3 is the best or within 0.01 of it at every fraction, at 0.93x the cost of one
    # full-label fit for the three fractions together.
    fraction_epoch_factor: float = 3.0
    # SIGN hops: [x, Ax, A²x]. Validation GAP of the logistic head (labels of the train bucket,
    # scored on the val bucket, k = 25): 1 hop 0.6423, 2 hops 0.6392 (raw x: 0.6325). One hop is
    # the smoothing row up to a linear map of its inputs ([x, ½x + ½Ax]), so the SIGN row keeps
    # the second hop, the one thing it adds.
    sign_hops: int = 2
    propagation_overrides: dict = field(default_factory=dict)  # baselines.PropagationConfig fields
    finetune_overrides: dict = field(default_factory=dict)  # finetune.FinetuneConfig fields
    # Ablation rows of the finetune protocol (FINETUNE_ABLATIONS), run at label fraction 1.0
    # only: each costs a fine-tuning (and "paper-exact" a wider pre-training) per variant and seed.
    finetune_ablations: tuple[str, ...] = FINETUNE_ABLATIONS
    on_error: str = "skip"  # bad records are skipped and reported in provenance
    train_overrides: dict = field(default_factory=dict)  # extra TrainConfig fields
    head_overrides: dict = field(default_factory=dict)  # extra HeadConfig fields


def git_commit() -> str | None:
    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT,
                              capture_output=True, text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def load_videos(data: str, level: str = "video", max_videos: int | None = None,
                on_error: str = "skip", progress: bool = True):
    """Read TFRecords (directory, file or glob) into a VideoSet, optionally the first N videos."""
    from vidsage_core.data import read_tfrecords

    # Feature sizes come from the data (1024/128 for YouTube-8M, 1280 for `vidsage ingest`).
    videos = read_tfrecords(data, level=level, on_error=on_error, progress=progress,
                            keep_frames=(level == "frame"), rgb_dim=None, audio_dim=None)
    if max_videos is not None and max_videos < len(videos):
        videos = videos.subset(np.arange(max_videos))
    return videos


def label_order(ids) -> np.ndarray:
    """One fixed order of videos for the nested labelled subsets, a pure function of the ids.

    ``sha256("vidsage-label-order:" + id)``, ascending: independent of every method seed and of
    the split hash (md5), so the subsets are the same for every method, seed and rerun.

    Args:
        ids: ``[N]`` video ids (the train+val videos, in row order).

    Returns:
        int64 ``[N]``: a permutation of ``0..N-1``.
    """
    import hashlib

    keys = [hashlib.sha256(f"vidsage-label-order:{i}".encode()).digest() for i in ids]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def labelled_subset(order: np.ndarray, fraction: float) -> np.ndarray:
    """The rows whose labels may be read at ``fraction``: a prefix of ``order``, sorted.

    ``max(1, round(fraction · N))`` rows, so a smaller fraction's subset lies inside a larger
    one's (nested).

    Returns:
        int64 ``[L]`` ascending rows.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label fraction {fraction!r} must be in (0, 1]")
    n = max(1, int(round(fraction * len(order))))
    return np.sort(order[:n]).astype(np.int64)


def _only_rows(y, rows: np.ndarray):
    """``y`` (CSR ``[N, C]``) with every row outside ``rows`` emptied: what a method may read."""
    import scipy.sparse as sp

    keep = sp.diags(np.isin(np.arange(y.shape[0]), rows).astype(y.dtype))
    out = (keep @ y).tocsr()
    out.eliminate_zeros()
    return out


@dataclass
class Prepared:
    """The videos of a run, their split and their normalised features."""

    videos: Any  # VideoSet
    split: Any  # data.Split
    trainval: np.ndarray  # int64 rows that every method may see (sorted)
    test: np.ndarray  # int64 rows scored (sorted), never in a training graph
    x: np.ndarray  # float32 [N, D] L2-normalised features (config.modality)
    split_rule: str


def prepare(config: RunConfig, videos=None, split=None, progress: bool = True) -> Prepared:
    """Load (unless given) and split the videos; compute their normalised features."""
    from vidsage_core.data import split_by_id

    if videos is None:
        videos = load_videos(config.data, config.level, config.max_videos, config.on_error,
                             progress)
    if len(videos) < 10:
        raise ValueError(f"{videos.source or config.data}: only {len(videos)} readable videos; "
                         "need at least 10")
    split_rule = ("given (official split)" if split is not None
                  else "md5(id) % 5: bucket 0 test, 1 val, 2-4 train")
    split = split if split is not None else split_by_id(videos.ids)
    trainval = np.sort(np.concatenate([split.train, split.val])).astype(np.int64)
    test = np.sort(split.test).astype(np.int64)
    if len(trainval) == 0 or len(test) == 0:
        raise ValueError(f"empty split: {len(trainval)} train+val and {len(test)} test videos")
    x = videos.features(config.modality, normalize=True)
    return Prepared(videos, split, trainval, test, x, split_rule)


def build_variant_graph(variant: str, prepared: Prepared, config: RunConfig,
                        progress: bool = True):
    """The training graph of one variant over the train+val videos, cached in the run directory.

    Returns:
        (VideoGraph, object sets of all videos or None, the fitted object source or None).
    """
    import pickle

    from vidsage_core.graph import VideoGraph, lite_graph, vidsage_graph
    from vidsage_core.objects import get_object_source

    import hashlib

    out_dir = Path(config.out) / variant
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_path, source_path = out_dir / "graph.pt", out_dir / "object_source.pkl"
    videos, rows, device = prepared.videos, prepared.trainval, resolve_device(config.device)
    # The cache is valid only for the same videos, rows, features and object source.
    key = hashlib.sha256(repr((videos.source, len(videos), prepared.x.shape, config.modality,
                               config.objects if variant == "vidsage" else None,
                               config.knn_mode)).encode()
                         + np.ascontiguousarray(rows).tobytes()).hexdigest()
    key_path = out_dir / "graph.key"
    if not key_path.exists() or key_path.read_text() != key:
        graph_path.unlink(missing_ok=True)
        source_path.unlink(missing_ok=True)
    object_sets, source = None, None
    if variant == "vidsage":
        if source_path.exists():
            source = pickle.loads(source_path.read_bytes())
        else:
            source = get_object_source(config.objects)
            if hasattr(source, "fit"):  # proxies and codebooks learn from train+val videos only
                source.fit(videos, rows)
            source_path.write_bytes(pickle.dumps(source))
        object_sets = source.object_sets(videos)
    if graph_path.exists():
        return VideoGraph.load(graph_path), object_sets, source
    if variant == "lite":
        graph = lite_graph(prepared.x[rows], mode=config.knn_mode, device=device, progress=progress)
    elif variant == "vidsage":
        graph = vidsage_graph(prepared.x[rows], [object_sets[i] for i in rows],
                              object_source=source.name, mode=config.knn_mode, device=device,
                              progress=progress)
    else:
        raise ValueError(f"unknown variant {variant!r}; expected 'lite' or 'vidsage'")
    graph.save(graph_path)
    key_path.write_text(key)
    return graph, object_sets, source


def _row(variant: str, head: str, seed: int, metrics: dict, object_source: str | None = None,
         train_seconds: float | None = None, *, protocol: str = "none", label_fraction: float = 1.0,
         num_labelled: int | None = None, init: str | None = None, preset: str | None = None,
         method: str | None = None, fit_seconds: float = float("nan")) -> dict:
    """One ``metrics.json`` row: what was run (method, protocol, labels, init) and its metrics."""
    keys = ("gap", "hit_at_one", "perr", "map", "mean_ap", "bucketed_map", "top1", "top5")
    row = {"method": method or f"{VARIANT_METHOD[variant]}-{head}", "variant": variant,
           "head": head, "seed": int(seed), "object_source": object_source,
           "protocol": protocol, "label_fraction": float(label_fraction),
           "num_labelled": None if num_labelled is None else int(num_labelled),
           "init": init, "preset": preset}
    row.update({k: float(metrics[k]) for k in keys})
    row["fit_seconds"] = float(fit_seconds)
    row["train_seconds"] = train_seconds
    return row


def run(config: RunConfig = RunConfig(), videos=None, split=None, progress: bool = True) -> dict:
    """Run the whole protocol and write ``config.json`` and ``metrics.json`` in ``config.out``.

    Args:
        config: what to run.
        videos: an already loaded VideoSet (e.g. a synthetic or action-recognition stand-in);
            default: read ``config.data``.
        split: a ``data.Split`` to use instead of the hash split (official splits of other
            datasets); its ``train`` and ``val`` rows are the train+val set.
        progress: tqdm bars.

    Returns:
        The content of ``metrics.json``: ``{"rows": [...], "provenance": {...}}``.
    """
    from vidsage_core.evaluate import HeadConfig, fit_head, predict
    from vidsage_core.infer import train_and_embed
    from vidsage_core.train import TrainConfig

    if config.protocol not in PROTOCOLS:
        raise ValueError(f"RunConfig.protocol={config.protocol!r}: expected one of {PROTOCOLS}")
    unknown = set(config.finetune_ablations) - set(FINETUNE_ABLATIONS)
    if unknown:
        raise ValueError(f"RunConfig.finetune_ablations: unknown {sorted(unknown)}; expected "
                         f"some of {FINETUNE_ABLATIONS}")
    fractions = tuple(sorted({float(f) for f in config.label_fractions}))
    if not fractions:
        raise ValueError("RunConfig.label_fractions is empty; give at least 1.0")
    protocols = ("probe", "finetune") if config.protocol == "both" else (config.protocol,)
    t_start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    save_json({**dataclasses.asdict(config), "resolved_device": device}, out / "config.json")
    (out / "metrics.json").unlink(missing_ok=True)  # never leave stale metrics beside a new config
    prepared = prepare(config, videos, split, progress)
    videos, split, trainval, test, x = (prepared.videos, prepared.split, prepared.trainval,
                                        prepared.test, prepared.x)
    videos.save(out / "data")
    save_json({"trainval": trainval, "test": test}, out / "split.json")
    y = videos.labels.tocsr()
    y_tv, y_te = y[trainval], y[test]
    x_tv, x_te = x[trainval], x[test]  # indexed once: every method sees these same rows
    if config.prepare_only:
        np.save(out / "features_trainval.npy", x_tv)
        for variant in config.variants:
            build_variant_graph(variant, prepared, config, progress)
        print(f"[run] prepared {out}/features_trainval.npy and "
              + ", ".join(f"{out}/{v}/graph.pt" for v in config.variants))
        return {"rows": [], "provenance": {"prepared_only": True}}
    # Labels a method may read at each fraction: one fixed order of the train+val videos, the
    # fraction a prefix of it. y_frac has every other row emptied, so no method can read more.
    order = label_order(np.asarray(videos.ids)[trainval])
    labelled = {f: labelled_subset(order, f) for f in fractions}
    y_frac = {f: _only_rows(y_tv, labelled[f]) for f in fractions}
    rows: list[dict] = []
    seconds: dict[str, float] = {}  # wall time per stage, to cost each kind of row

    def timed(stage: str, t0: float) -> float:
        dt = time.perf_counter() - t0
        seconds[stage] = seconds.get(stage, 0.0) + dt
        return dt

    def score(variant, head, seed, scores_te, fraction, **fields):
        # The only place test labels are read.
        rows.append(_row(variant, head, seed, all_metrics(scores_te, y_te), label_fraction=fraction,
                         num_labelled=len(labelled[fraction]), **fields))
        r = rows[-1]
        print(f"  {r['method']:<34} f={fraction:<5g} seed {seed}: GAP {r['gap']:.4f}  hit@1 "
              f"{r['hit_at_one']:.4f}  PERR {r['perr']:.4f}  mAP@20 {r['map']:.4f}", flush=True)
        save_json({"rows": rows, "provenance": provenance}, out / "metrics.json")

    def heads_on(variant, f_tv, f_te, seed, fraction, heads, keep=False, **fields):
        """Fit each head on the labelled rows at ``fraction``; score it on the test rows."""
        lab, kept = labelled[fraction], {}
        every = lab.size == y_tv.shape[0]  # all labels: fit on the inputs as given (frame inputs too)
        x_fit = f_tv if every else f_tv[lab]
        y_fit = y_frac[fraction] if every else y_frac[fraction][lab]
        for head in heads:
            hc = HeadConfig(**{"seed": seed, "device": device, **config.head_overrides})
            hc = dataclasses.replace(hc, epochs=epochs_at(fraction, hc.epochs_for(head)))
            t0 = time.perf_counter()
            fitted = fit_head(head, x_fit, y_fit, hc)
            fit_seconds = time.perf_counter() - t0
            scores_te = predict(fitted, f_te)
            if keep:  # base predictions of every train+val video, for Correct & Smooth
                kept[head] = (predict(fitted, f_tv), scores_te)
            score(variant, head, seed, scores_te, fraction, fit_seconds=fit_seconds, **fields)
        return kept

    def epochs_at(fraction: float, epochs: int) -> int:
        return max(1, round(epochs * min(1.0 / fraction, config.fraction_epoch_factor)))

    def heads_at(fraction: float, full: tuple[str, ...]) -> tuple[str, ...]:
        return full if fraction == 1.0 else config.fraction_heads

    provenance = {
        "dataset": config.dataset,
        "source": videos.source,
        "synthetic": bool(videos.synthetic),
        "num_videos": int(len(videos)),
        "split": {"train": int(len(split.train)), "val": int(len(split.val)),
                  "test": int(len(test))},
        "split_rule": prepared.split_rule,
        "num_classes": int(videos.num_classes),
        "num_classes_evaluated": int((np.asarray(y_te.sum(0)).ravel() > 0).sum()),
        "single_label": bool((np.diff(y.indptr) <= 1).all()),
        "modality": config.modality,
        "feature_dim": int(x.shape[1]),
        "seeds": list(config.seeds),
        "protocol": config.protocol,
        "label_fractions": list(fractions),
        "num_labelled": {str(f): int(len(labelled[f])) for f in fractions},
        "label_subset_rule": "train+val videos ordered by sha256('vidsage-label-order:' + id); "
                             "fraction f reads the labels of the first round(f * N) (nested)",
        "device": device,
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "skipped": videos.skipped.counts() if videos.skipped is not None else {},
        "stage_seconds": seconds,
    }
    if config.baselines:
        from vidsage_core.baselines import (PropagationConfig, correct_and_smooth, knn_neighbours,
                                            label_propagation, sign_features)

        print(f"[run] baselines on {len(trainval)} train+val / {len(test)} test videos", flush=True)
        pconf = PropagationConfig(**config.propagation_overrides)
        provenance["propagation"] = dataclasses.asdict(pconf)
        provenance["sign_hops"] = config.sign_hops
        t0 = time.perf_counter()
        # One kNN graph for smoothing, SIGN, label propagation and C&S.
        nb = knn_neighbours(x_tv, x_te, config.sgc_k, device, config.knn_mode)
        f_tv, f_te = sgc_features(x_tv, x_te, neighbours=nb)
        s_tv, s_te = sign_features(x_tv, x_te, nb, config.sign_hops)
        timed("baseline_features", t0)
        for fraction in fractions:
            lab = labelled[fraction]
            t0 = time.perf_counter()
            # Label propagation has no seed: the same scores are scored once per seed below so
            # that every method has one row per seed.
            _, lp_te = label_propagation(y_frac[fraction], lab, nb, pconf)
            lp_seconds = timed("labelprop", t0)
            for seed in config.seeds:
                t0 = time.perf_counter()
                base = heads_on("raw", x_tv, x_te, seed, fraction, heads_at(fraction, config.heads),
                                keep=True)
                heads_on("sgc", f_tv, f_te, seed, fraction, heads_at(fraction, config.gnn_heads))
                timed("raw_sgc_heads", t0)
                t0 = time.perf_counter()
                heads_on("sign", s_tv, s_te, seed, fraction, heads_at(fraction, config.gnn_heads))
                timed("sign_heads", t0)
                score("lp", "none", seed, lp_te, fraction, method="labelprop",
                      fit_seconds=lp_seconds)
                for head, (b_tv, b_te) in base.items():
                    t0 = time.perf_counter()
                    _, cs_te = correct_and_smooth(b_tv, b_te, y_frac[fraction], lab, nb, pconf)
                    score("cs", head, seed, cs_te, fraction, fit_seconds=timed("correct_smooth", t0))
    if videos.frames is not None and config.frame_heads:
        from vidsage_core.evaluate import FrameInput

        frames_tv = FrameInput(videos.frames[trainval], videos.num_frames[trainval])
        frames_te = FrameInput(videos.frames[test], videos.num_frames[test])
        print(f"[run] frame-level baselines on {len(trainval)} videos", flush=True)
        for seed in config.seeds:  # all labels only: frame heads are Table 2's paper rows
            heads_on("frame", frames_tv, frames_te, seed, 1.0 if 1.0 in labelled else fractions[-1],
                     config.frame_heads)
    for variant in config.variants:
        vdir = out / variant
        graph, object_sets, source = build_variant_graph(variant, prepared, config, progress)
        attach = {}
        if object_sets is not None:
            attach = {"objects_train": [object_sets[i] for i in trainval],
                      "objects_new": [object_sets[i] for i in test]}
        source_name = source.name if source is not None else None
        for seed in config.seeds:
            fields = {"seed": seed, "device": device, **config.train_overrides}
            if config.epochs is not None:
                fields["epochs"] = config.epochs
            tconf = TrainConfig(**fields)
            print(f"[run] {VARIANT_METHOD[variant]} seed {seed}: unsupervised training on "
                  f"{graph.num_nodes} nodes (no labels)", flush=True)
            t0 = time.perf_counter()
            z_tv, z_te, _ = train_and_embed(x_tv, graph, x_te, tconf,
                                            vdir / f"seed{seed}", attach, progress=progress)
            pretrain_seconds = timed("pretrain", t0)
            gnn = {"object_source": source_name, "init": "unsupervised"}
            if "probe" in protocols:
                t0 = time.perf_counter()
                for fraction in fractions:
                    heads = heads_at(fraction, config.gnn_heads)
                    heads_on(variant, z_tv, z_te, seed, fraction, heads, protocol="probe",
                             train_seconds=pretrain_seconds, **gnn)
                    if config.concat_raw:
                        heads_on(f"{variant}+raw", np.concatenate([x_tv, z_tv], 1),
                                 np.concatenate([x_te, z_te], 1), seed, fraction, heads,
                                 protocol="probe", train_seconds=pretrain_seconds, **gnn)
                timed("probe_heads", t0)
            if "finetune" in protocols:
                _finetune_rows(config, tconf, variant, seed, device, x_tv, graph, y_frac,
                               labelled, x_te, attach, vdir, pretrain_seconds, source_name, score,
                               timed, progress)
    provenance["total_seconds"] = time.perf_counter() - t_start
    metrics = {"rows": rows, "provenance": provenance}
    save_json(metrics, out / "metrics.json")
    return metrics


#: FinetuneConfig fields finetune.paper_config fixes: RunConfig.finetune_overrides never change
#: them for the paper-exact row (epochs, lr, batch size... still apply).
_PAPER_PINNED = ("skip", "hidden_dim", "final_activation", "aggr", "edge_weights", "dropout")


def _finetune_rows(config: RunConfig, tconf, variant: str, seed: int, device: str, x_tv, graph,
                   y_frac: dict, labelled: dict, x_te, attach: dict, vdir: Path,
                   pretrain_seconds: float, source_name, score, timed, progress: bool) -> None:
    """The finetune protocol's rows of one variant and seed: every label fraction from the
    unsupervised checkpoint, then the ablations (random init, paper-exact) with all labels.

    The encoder is the pre-trained one (``tconf``'s width and final activation, also for the
    random-init ablation: "the same network"), unless ``finetune_overrides`` says otherwise.
    """
    from vidsage_core.finetune import FinetuneConfig, finetune, paper_config, paper_train_overrides
    from vidsage_core.train import TrainConfig, train

    fields = {"seed": seed, "device": device, "hidden_dim": tconf.hidden_dim,
              "final_activation": tconf.final_activation, **config.finetune_overrides}
    sdir = vdir / f"seed{seed}"
    name = VARIANT_METHOD[variant]
    base = {"protocol": "finetune", "object_source": source_name}

    def one(fraction, fconf, init, out_dir, method, init_name, preset, train_seconds, stage):
        print(f"[run] {method} seed {seed}: fine-tuning on {len(labelled[fraction])} labelled "
              f"videos (label fraction {fraction:g})", flush=True)
        t0 = time.perf_counter()
        res = finetune(x_tv, graph, y_frac[fraction], labelled[fraction], x_te, attach, fconf,
                       out_dir, init=init, progress=progress)
        timed(stage, t0)
        score(variant, "logistic", seed, res.scores_test, fraction, method=method, init=init_name,
              preset=preset, train_seconds=train_seconds, fit_seconds=res.seconds, **base)

    for fraction in sorted(labelled):
        fconf = FinetuneConfig(**fields)
        # Epochs are passes over the labelled videos: fewer labels, more passes (as the heads').
        fconf = dataclasses.replace(fconf, epochs=max(1, round(
            fconf.epochs * min(1.0 / fraction, config.fraction_epoch_factor))))
        one(fraction, fconf, sdir / "model.pt", sdir / f"finetune-f{fraction:g}",
            f"{name}-finetune", "unsupervised", "default", pretrain_seconds, "finetune")
    full = max(labelled)  # the ablations read all the labels the run gives (1.0 by default)
    if "random-init" in config.finetune_ablations:
        one(full, FinetuneConfig(**fields), None, sdir / "finetune-random-init",
            f"{name}-finetune-random-init", "random", "default", None, "finetune_random_init")
    if "paper-exact" in config.finetune_ablations:
        tfields = {"seed": seed, "device": device, **config.train_overrides,
                   **paper_train_overrides(x_tv.shape[1])}
        if config.epochs is not None:
            tfields["epochs"] = config.epochs
        pdir = vdir / f"seed{seed}-paper-exact"
        print(f"[run] {name} seed {seed}: unsupervised training of the paper-exact encoder "
              f"(width {x_tv.shape[1]})", flush=True)
        t0 = time.perf_counter()
        train(x_tv, graph, TrainConfig(**tfields), pdir, progress=progress)
        paper_pretrain = timed("pretrain_paper_exact", t0)
        pconf = paper_config(**{k: v for k, v in fields.items() if k not in _PAPER_PINNED})
        one(full, pconf, pdir / "model.pt", pdir / "finetune", f"{name}-finetune-paper-exact",
            "unsupervised", "paper-exact", paper_pretrain, "finetune_paper_exact")


def load_metrics(run_dir: str | Path) -> dict:
    """The ``metrics.json`` of a run directory."""
    path = Path(run_dir) / "metrics.json"
    if not path.exists():
        raise FileNotFoundError(f"{path} not found: run `vidsage run --out {run_dir}` first")
    return load_json(path)


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    d = RunConfig()
    parser.add_argument("--data", default=d.data,
                        help="TFRecords: directory, file or glob (default: the embedded YouTube-8M sample)")
    parser.add_argument("--out", default=d.out, help="run directory (default: %(default)s)")
    parser.add_argument("--dataset", default=d.dataset, help="name recorded in provenance")
    parser.add_argument("--level", choices=("video", "frame"), default=d.level)
    parser.add_argument("--variant", choices=("lite", "vidsage", "all", "none"), default="all",
                        help="GNN variants to train (default: all)")
    parser.add_argument("--objects", default=d.objects,
                        help="object source for VidSage: detections:PATH, frame-codebook, "
                             "proxy-subspace, proxy-audio, proxy-rgb, imagenet-tagger:DIR (default: %(default)s)")
    parser.add_argument("--seeds", type=int, default=len(d.seeds), help="number of seeds (0, 1, ...)")
    parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: TrainConfig's)")
    parser.add_argument("--heads", nargs="+", default=list(d.heads),
                        help="downstream heads (default: %(default)s)")
    parser.add_argument("--max-videos", type=int, default=None, help="use only the first N videos")
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")
    parser.add_argument("--no-baselines", action="store_true",
                        help="skip the baseline rows (raw, sgc, sign, labelprop, cs)")
    parser.add_argument("--protocol", choices=PROTOCOLS, default=d.protocol,
                        help="probe: heads on frozen embeddings; finetune: the paper's §4.2 "
                             "pre-train then fine-tune with a classification layer; both "
                             "(default: %(default)s)")
    parser.add_argument("--label-fractions", type=float, nargs="+", default=list(d.label_fractions),
                        help="fractions of the train+val labels given to heads, baselines and "
                             "fine-tuning (nested subsets), e.g. 0.01 0.05 0.25 1 "
                             "(default: %(default)s)")
    parser.add_argument("--knn-mode", choices=("exact", "ivf-gemm", "ivf", "hnsw"), default=d.knn_mode,
                        help="neighbour search for the graphs: exact, or approximate for millions of "
                             "videos (ivf-gemm is the fastest for whole graphs; default: %(default)s)")
    parser.add_argument("--on-error", choices=("skip", "raise"), default=d.on_error,
                        help="bad records: skip and report (default) or stop at the first")
    parser.add_argument("--prepare-only", action="store_true",
                        help="only write OUT/features_trainval.npy and OUT/<variant>/graph.pt, the "
                             "inputs of `torchrun -m vidsage_core.train` (multi-GPU training)")


def run_command(args: argparse.Namespace) -> int:
    variants = {"all": ("lite", "vidsage"), "none": ()}.get(args.variant, (args.variant,))
    config = RunConfig(data=args.data, out=args.out, dataset=args.dataset, level=args.level,
                       variants=variants, objects=args.objects,
                       seeds=tuple(range(args.seeds)), epochs=args.epochs,
                       heads=tuple(args.heads), max_videos=args.max_videos, device=args.device,
                       baselines=not args.no_baselines, on_error=args.on_error, knn_mode=args.knn_mode,
                       prepare_only=args.prepare_only, protocol=args.protocol,
                       label_fractions=tuple(args.label_fractions))
    metrics = run(config)
    if config.prepare_only:
        return 0
    print(f"\nwrote {Path(args.out) / 'metrics.json'} ({len(metrics['rows'])} rows, "
          f"{metrics['provenance']['total_seconds']:.0f} s)")
    return 0


#: Label fractions of the artifact's label-efficiency experiment (1 %, 5 %, 25 %, all).
ARTIFACT_LABEL_FRACTIONS = (0.01, 0.05, 0.25, 1.0)


def artifact_config(data: str | None = None, smoke: bool = False, num_seeds: int = 3,
                    device: str = "auto", name: str = "yt8m", **fields) -> RunConfig:
    """The RunConfig the notebooks use: full by default, tiny with ``smoke``.

    Smoke runs go to their own directory (``<name>-smoke``) so they never overwrite a full run.
    """
    # Table 2's video-level baselines; both protocols (the paper's Table 2 is fine-tuned); the
    # label-efficiency fractions (results/label_efficiency.*).
    fields = {"heads": ("logistic", "hinge", "moe"), "protocol": "both",
              "label_fractions": ARTIFACT_LABEL_FRACTIONS, **fields}
    if smoke:
        fields = {**fields, "max_videos": 1500, "epochs": 1, "heads": ("logistic",),
                  "frame_heads": ("logistic_average",), "label_fractions": (0.1, 1.0),
                  "finetune_overrides": {"epochs": 1, **fields.get("finetune_overrides", {})}}
        num_seeds = min(num_seeds, 2)
        name = f"{name}-smoke"
    return RunConfig(data=data or paths.YT8M_2018_GLOB, out=str(paths.RUNS / name),
                     seeds=tuple(range(num_seeds)), device=device, **fields)


def _run_artifacts(out: Path, config: RunConfig) -> list[Path]:
    """The files a finished run leaves per variant and seed (model and embeddings)."""
    if config.prepare_only:
        return []
    return [out / v / f"seed{seed}" / name for v in config.variants for seed in config.seeds
            for name in ("model.pt", "embeddings.npz")]


def run_if_missing(config: RunConfig, videos=None, split=None, progress: bool = True) -> dict:
    """Reuse ``config.out``'s metrics when they were made with this very config, else run.

    What the table notebooks call: they train only what is missing, and say so.
    """
    out = Path(config.out)
    wanted = json.loads(json.dumps(to_jsonable(config)))  # as config.json stores it
    if (out / "metrics.json").exists() and (out / "config.json").exists():
        saved = load_json(out / "config.json")
        saved.pop("resolved_device", None)
        metrics = load_json(out / "metrics.json")
        # A clone carries the run's JSONs but not its models and embeddings (git-ignored), which
        # the latency table and the figures read: those must be on disk too.
        missing = [p for p in _run_artifacts(out, config) if not p.exists()]
        if saved == wanted and "total_seconds" in metrics["provenance"] and not missing:
            print(f"[run] {out}: complete results for this configuration exist; not re-run")
            return metrics
        if saved == wanted and missing:
            print(f"[run] {out}: metrics exist but {len(missing)} model/embedding files do not "
                  f"(e.g. {missing[0]}); running it again")
    print(f"[run] {out}: no complete results for this configuration; running it now")
    return run(config, videos=videos, split=split, progress=progress)


@dataclass
class RunView:
    """Read access to a finished run directory, for figures and exploration."""

    out: Path
    config: dict
    videos: Any  # VideoSet (memory-mapped)
    trainval: np.ndarray
    test: np.ndarray

    @property
    def x(self) -> np.ndarray:
        """float32 [N, D] normalised features of all videos of the run."""
        return self.videos.features(self.config["modality"], normalize=True)

    def graph(self, variant: str):
        from vidsage_core.graph import VideoGraph

        return VideoGraph.load(self.out / variant / "graph.pt")

    def object_sets(self, variant: str) -> list[frozenset[str]] | None:
        """Every video's object set from the variant's fitted object source (None: no source)."""
        import pickle

        path = self.out / variant / "object_source.pkl"
        if not path.is_file():
            return None
        return pickle.loads(path.read_bytes()).object_sets(self.videos)

    def embeddings(self, variant: str, seed: int = 0, part: str = "trainval") -> np.ndarray:
        """float32 [rows of ``part``, d'] GNN embeddings ("trainval" or "test")."""
        with np.load(self.out / variant / f"seed{seed}" / "embeddings.npz") as z:
            return z[part]


def load_run(run_dir: str | Path) -> RunView:
    """Open a run directory written by :func:`run`."""
    from vidsage_core.data import VideoSet

    out = Path(run_dir)
    split = load_json(out / "split.json")
    return RunView(out, load_json(out / "config.json"), VideoSet.load(out / "data"),
                   np.asarray(split["trainval"], dtype=np.int64),
                   np.asarray(split["test"], dtype=np.int64))
