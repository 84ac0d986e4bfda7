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
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from vidsage_core import paths
from vidsage_core.embed import embed
from vidsage_core.infer import InductiveEmbedder
from vidsage_core.metrics import all_metrics
from vidsage_core.precision import PRECISIONS, check_precision, resolve_precision
from vidsage_core.train import TrainConfig, TrainResult, train
from vidsage_core.utils import load_json, resolve_device, save_json, to_jsonable
from vidsage_core.workers import run_units, threads_per_worker

OBJECT_SOURCE = "object_source.json"  # beside object_source.npz (its fitted arrays)
VARIANT_METHOD = {"raw": "raw", "frame": "frame", "sgc": "sgc", "sign": "sign", "cs": "cs",
                  "lp": "labelprop", "lite": "litevidsage", "vidsage": "vidsage",
                  "lite+raw": "litevidsage+raw", "vidsage+raw": "vidsage+raw"}
#: The GNN variants (graphs) a run can train: LiteVidSage's kNN graph and VidSage's object graph.
GRAPH_VARIANTS = ("lite", "vidsage")
PROTOCOLS = ("probe", "finetune", "both")
#: Fine-tuning ablations: "random-init" (the same network trained from random weights, no
#: unsupervised stage), "paper-exact" (finetune.paper_config on an encoder pre-trained with
#: finetune.paper_train_overrides) and "moe-layer" (the same fine-tuning with YouTube-8M's MoE as
#: the classification layer, FinetuneConfig.classifier="moe": head for head with the MoE baselines).
FINETUNE_ABLATIONS = ("random-init", "paper-exact", "moe-layer")
#: Step size and passes of the heads per input (HeadConfig fields by input, then by head; heads
#: and inputs not listed use HeadConfig's lr 3e-2 and HEAD_EPOCHS). Adam moves every weight by
#: about lr per step, so a logit moves by about lr times the input's L1 norm: wider inputs want
#: smaller steps. Chosen on the validation bucket (`python -m benchmarks.head_search --split val`,
#: fit on buckets 2-4, 8,383 videos; seed 0; val GAP at full labels, lr x epochs):
#:   raw x (1152-d), logistic: 3e-2 x 8 0.6325 | 6e-2 x 3 0.6340 | 1e-1 x 2 0.6325 | 4e-2 x 4 0.6306
#:   raw x, MoE: 3e-2 x 5 0.6375 | 6e-2 x 3 0.6414 | 1e-1 x 2 0.6355
#:   raw x, hinge: 3e-2 x 5 0.6157 | 1e-1 x 2 0.5965 (kept)
#:   smoothing [x, Sx] (2304-d), logistic: 3e-2 x 8 0.6423 | 3e-2 x 5 0.6441 | 4e-2 x 4 0.6443 |
#:     6e-2 x 3 0.6415 | 2e-2 x 6 0.6431
#:   SIGN [x, Ax, A²x] (3456-d), logistic: 3e-2 x 8 0.6392 | 3e-2 x 5 0.6394 | 4e-2 x 4 0.6374 |
#:     6e-2 x 3 0.6334 | 2e-2 x 6 0.6380
#: Each choice scores at least the former 3e-2 x 8 and costs 3/8 (raw), 3/5 (MoE) or 5/8 of it.
#:   probe [x ‖ z] (1280-d; z from a LiteVidSage encoder pre-trained on the train buckets,
#:     `--inputs lite+raw`), logistic, val GAP at label fractions 1 / 0.25 / 0.05 / 0.01:
#:     3e-2 x 8 .6435 .5505 .4191 .2443 (20.7 s at full labels) | 3e-2 x 5 .6429 .5497 .4211 .2417
#:     (11.1 s) | 4e-2 x 4 .6427 .5495 .4221 .2393 | 6e-2 x 3 .6410 (7.6 s).
#:   No point beats 3e-2 x 8 here; 3e-2 x 5 is within 0.0006 of it at full labels (mean -0.0005
#:   over the four fractions, one seed) at 54 % of the cost, and is used for both [x ‖ z] rows: a
#:   cost choice that can only lower our own rows, stated as such. (Raw x's 6e-2 x 3 on [x ‖ z]
#:   had lowered its test GAP in one full run, 0.6556 vs 0.6591, consistent with its val 0.6410.)
#: The z-only probe rows keep HeadConfig's 3e-2 x 8 (128-d: a few seconds a fit).
#: At label fractions the epochs grow as RunConfig.fraction_epoch_factor says; raw x logistic,
#: 6e-2 x 3 against 3e-2 x 8 there: 1 % 0.1429 vs 0.1460, 5 % 0.3356 vs 0.3344, 25 % 0.5162 vs 0.5180.
HEAD_SCHEDULE = {
    "raw": {"logistic": {"lr": 6e-2, "epochs": 3}, "moe": {"lr": 6e-2, "epochs": 3}},
    "sgc": {"logistic": {"lr": 3e-2, "epochs": 5}},
    "sign": {"logistic": {"lr": 3e-2, "epochs": 5}},
    "lite+raw": {"logistic": {"lr": 3e-2, "epochs": 5}},
    "vidsage+raw": {"logistic": {"lr": 3e-2, "epochs": 5}},
}


@dataclass(frozen=True)
class RunConfig:
    """Everything ``vidsage run`` needs; saved as ``config.json`` beside the results."""

    data: str = paths.YT8M_2018_GLOB  # TFRecord directory, file or glob
    out: str = str(paths.RUNS / "yt8m")
    dataset: str = "youtube8m-2018-sample"  # provenance label in tables
    level: str = "video"  # "video" or "frame" TFRecords
    variants: tuple[str, ...] = GRAPH_VARIANTS
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
    # mode of knn.knn for millions of videos ("ivf-gemm": same candidates as FAISS IVF, built
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
    # Variants the "moe-layer" ablation runs for. A MoE layer costs ~2x a logistic one per
    # fine-tuning (5x the classification layer's outputs); the artifact runs it for VidSage only.
    moe_layer_variants: tuple[str, ...] = GRAPH_VARIANTS
    on_error: str = "skip"  # bad records are skipped and reported in provenance
    # False: train and embed only (no heads, no retrieval scores), e.g. for data without labels;
    # with labels on only some videos, the scores use the labelled ones (counted in provenance).
    evaluate: bool = True
    train_overrides: dict = field(default_factory=dict)  # extra TrainConfig fields
    # HeadConfig fields per input and head (HEAD_SCHEDULE: chosen on validation); head_overrides
    # win over it.
    head_schedule: dict = field(default_factory=lambda: json.loads(json.dumps(HEAD_SCHEDULE)))
    head_overrides: dict = field(default_factory=dict)  # extra HeadConfig fields, for every head
    # Millions of videos (run_streamed): TFRecords are streamed group by group into on-disk
    # float16 stores (never all features in RAM), the GNN trains and embeds from them; LiteVidSage
    # graphs only (object sources fit on in-memory VideoSets), no smoothing baseline.
    stream: bool = False
    # Videos per split the heads are fitted / scored on (None: all). Scoring keeps a dense
    # [N_test, 3862] matrix (12 GB at 800k test videos), so a sample bounds it at scale.
    head_sample: int | None = None
    # Processes that run the run's independent units side by side (the baselines of one seed and
    # label fraction; one variant and seed), each with cores / workers torch threads; 1: all in
    # this process. Results are deterministic for a given value (a matrix product's summation
    # order depends on its thread count), so the value is saved with the results.
    workers: int = 1
    # Matrix products of the heads' and fine-tuning's dense layers (vidsage_core.precision):
    # "auto" is bf16 on a CPU with native bf16 (same validation GAP to 4 decimals, 1.5-2x
    # faster there), fp32 elsewhere; "fp32" or "bf16" force one. Every method of a run, learned
    # or baseline, uses the same; the resolved value is in the provenance.
    precision: str = "auto"


def saved_config(config: RunConfig) -> dict:
    """The config as ``config.json`` stores it: JSON types, paths relative to the repository.

    ``data`` and ``out`` go through :func:`paths.relative`, so the file names no absolute path of
    the machine that ran it (a user's own ``--data`` outside the repository stays as given).
    """
    saved = json.loads(json.dumps(to_jsonable(config)))
    saved["data"], saved["out"] = paths.relative(saved["data"]), paths.relative(saved["out"])
    return saved


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
    videos.source = paths.relative(videos.source)  # provenance names no machine's checkout
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


#: Representations whose label-sharing retrieval is scored (``retrieval_*`` keys of their rows).
RETRIEVAL_VARIANTS = ("raw", "sgc", "lite", "lite+raw", "vidsage", "vidsage+raw")


def _take(features, rows: np.ndarray):
    """``features[rows]`` for an array or for a tuple of per-video arrays (``FrameInput``)."""
    if isinstance(features, tuple):
        return type(features)(*(a[rows] for a in features))
    return features[rows]


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
    videos.source = paths.relative(videos.source)
    return Prepared(videos, split, trainval, test, x, split_rule)


def build_variant_graph(variant: str, prepared: Prepared, config: RunConfig,
                        progress: bool = True):
    """The training graph of one variant over the train+val videos, cached in the run directory.

    Returns:
        (VideoGraph, object sets of all videos or None, the fitted object source or None).
    """
    from vidsage_core.graph import VideoGraph, lite_graph, vidsage_graph
    from vidsage_core.objects import get_object_source, load_object_source, save_object_source

    import hashlib

    out_dir = Path(config.out) / variant
    out_dir.mkdir(parents=True, exist_ok=True)
    # The fitted source is JSON + NPZ (never a pickle: run directories are passed around).
    graph_path, source_path = out_dir / "graph.pt", out_dir / OBJECT_SOURCE
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
        source_path.with_suffix(".npz").unlink(missing_ok=True)
    object_sets, source = None, None
    if variant == "vidsage":
        if source_path.exists():
            source = load_object_source(source_path)
        else:
            source = get_object_source(config.objects)
            if hasattr(source, "fit"):  # proxies and codebooks learn from train+val videos only
                source.fit(videos, rows)
            save_object_source(source, source_path)
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


@dataclass
class Evaluated:
    """Which videos the heads and retrieval scores use: the labelled ones of each part."""

    trainval: np.ndarray  # int64 positions within Prepared.trainval (all when fully labelled)
    test: np.ndarray  # int64 positions within Prepared.test
    full: bool  # every video labelled: no subsetting needed


def labelled_mask(labels) -> np.ndarray:
    """bool ``[N]``: the video has at least one positive label (stored zeros do not count)."""
    return (labels.tocsr() > 0).getnnz(axis=1) > 0


def evaluated_videos(labels, trainval: np.ndarray, test: np.ndarray,
                     evaluate: bool = True) -> Evaluated | None:
    """The labelled train+val and test videos, or None when nothing can (or should) be scored.

    Args:
        labels: CSR ``[N, C]`` of all videos.
        trainval, test: the split's rows.
        evaluate: False (``--no-eval``): score nothing.

    Returns:
        :class:`Evaluated`, or None when evaluation is off or the train+val or test part has no
        labelled video. Anything but full labels is announced in one printed line.
    """
    has = labelled_mask(labels)
    tv, te = np.flatnonzero(has[trainval]), np.flatnonzero(has[test])
    if not evaluate:
        print("[run] --no-eval: heads and retrieval scores skipped; training and embedding only",
              flush=True)
        return None
    if len(tv) == 0 or len(te) == 0:
        print(f"[run] no labels to evaluate with ({int(has.sum())} of {len(has)} videos labelled: "
              f"{len(tv)} train+val, {len(te)} test): heads and retrieval scores skipped; "
              "training and embedding only", flush=True)
        return None
    full = len(tv) == len(trainval) and len(te) == len(test)
    if not full:
        print(f"[run] {int(has.sum())} of {len(has)} videos are labelled: heads and retrieval use "
              f"the {len(tv)} labelled train+val and {len(te)} labelled test videos", flush=True)
    return Evaluated(tv.astype(np.int64), te.astype(np.int64), full)


def write_run_embeddings(path: Path, ids, trainval: np.ndarray, test: np.ndarray,
                         z_tv: np.ndarray, z_te: np.ndarray) -> Path:
    """``embeddings.npz`` of all the run's videos in the run's order (``retrieval.save_embeddings``).

    Args:
        ids: ``[N]`` ids of all videos; trainval, test: their rows.
        z_tv: float32 ``[len(trainval), d]`` (transductive); z_te: ``[len(test), d]`` (attached
            inductively, as new videos).
    """
    from vidsage_core.retrieval import save_embeddings

    z = np.zeros((len(ids), z_tv.shape[1]), dtype=np.float32)
    z[trainval], z[test] = z_tv, z_te
    return save_embeddings(path, ids, z)


def train_and_embed(x_trainval: np.ndarray, graph, x_test: np.ndarray, config: TrainConfig = TrainConfig(),
                    out_dir: str | Path = "run", attach_kwargs: dict | None = None, resume: bool = False,
                    progress: bool = True) -> tuple[np.ndarray, np.ndarray, TrainResult]:
    """Train on the train+val graph, embed it transductively and the test videos inductively.

    Test videos are never in the training graph; they are attached exactly as new videos
    (:func:`embed_unseen`). Writes ``out_dir/attach.json`` (the attachment rule and edge counts) beside train()'s files.

    Args:
        x_trainval: float32 [N, D] features of the graph's nodes.
        graph: VideoGraph over them.
        x_test: float32 [M, D].
        config: TrainConfig.
        out_dir: run directory.
        attach_kwargs: objects_train, objects_new, k, tau, alpha, beta, ... for attachment.
        resume: passed to train().
        progress: progress bars.

    Returns:
        z_trainval float32 [N, out_dim], z_test float32 [M, out_dim], TrainResult.
    """
    attach_kwargs = dict(attach_kwargs or {})
    objects_new = attach_kwargs.pop("objects_new", None)
    out_dir = Path(out_dir)
    result = train(x_trainval, graph, config, out_dir, resume=resume, progress=progress)
    device = result.resolved["device"]
    z_trainval = embed(result.model, x_trainval, graph, device=device)
    emb = InductiveEmbedder(result.model, x_trainval, graph, device=device, **attach_kwargs)
    t, nw, w = emb.attachment_edges(x_test, objects_new)
    z_test = emb.embed_attached(x_test, t, nw, w)
    deg = np.bincount(nw, minlength=len(x_test))
    out_dir.mkdir(parents=True, exist_ok=True)
    save_json({"rule": emb.params(), "num_new": int(len(x_test)), "edges": int(len(t)),
               "degree_mean": float(deg.mean()) if deg.size else 0.0,
               "isolated_new": int((deg == 0).sum())}, out_dir / "attach.json")
    return z_trainval, z_test, result


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


def run(config: RunConfig = RunConfig(), videos=None, split=None, progress: bool = True,
        resume: bool = False) -> dict:
    """Run the whole protocol and write ``config.json`` and ``metrics.json`` in ``config.out``.

    Args:
        config: what to run.
        videos: an already loaded VideoSet (e.g. a synthetic or action-recognition stand-in);
            default: read ``config.data``.
        split: a ``data.Split`` to use instead of the hash split (official splits of other
            datasets); its ``train`` and ``val`` rows are the train+val set.
        progress: tqdm bars.
        resume: continue each seed's training from its checkpoint (after Ctrl-C).

    Every variant and seed writes ``<variant>/seed<s>/embeddings.npz`` (all videos, see
    :mod:`vidsage_core.retrieval`) whether or not labels exist; heads and retrieval scores use
    the labelled videos only and are skipped when there are none (or ``config.evaluate`` is off).

    Returns:
        The content of ``metrics.json``: ``{"rows": [...], "provenance": {...}}``.
    """
    if config.protocol not in PROTOCOLS:
        raise ValueError(f"RunConfig.protocol={config.protocol!r}: expected one of {PROTOCOLS}")
    check_precision(config.precision, "RunConfig.precision")  # before any data is read
    unknown = set(config.finetune_ablations) - set(FINETUNE_ABLATIONS)
    if unknown:
        raise ValueError(f"RunConfig.finetune_ablations: unknown {sorted(unknown)}; expected "
                         f"some of {FINETUNE_ABLATIONS}")
    if not set(config.moe_layer_variants) <= set(GRAPH_VARIANTS):
        raise ValueError(f"RunConfig.moe_layer_variants={config.moe_layer_variants!r}: expected "
                         f"some of {GRAPH_VARIANTS}")
    fractions = tuple(sorted({float(f) for f in config.label_fractions}))
    if not fractions:
        raise ValueError("RunConfig.label_fractions is empty; give at least 1.0")
    protocols = ("probe", "finetune") if config.protocol == "both" else (config.protocol,)
    t_start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    save_json({**saved_config(config), "resolved_device": device}, out / "config.json")
    (out / "metrics.json").unlink(missing_ok=True)  # never leave stale metrics beside a new config
    prepared = prepare(config, videos, split, progress)
    videos, split, trainval, test, x = (prepared.videos, prepared.split, prepared.trainval,
                                        prepared.test, prepared.x)
    videos.save(out / "data")
    save_json({"trainval": trainval, "test": test}, out / "split.json")
    y = videos.labels.tocsr()
    evaluated = evaluated_videos(y, trainval, test, config.evaluate)
    # Only labelled videos are fitted and scored: te_sel picks the labelled test videos, and the
    # label order below holds only labelled train+val videos (all of them when fully labelled).
    tv_labelled = np.arange(len(trainval)) if evaluated is None else evaluated.trainval
    te_sel = slice(None) if evaluated is None or evaluated.full else evaluated.test
    y_tv, y_te = y[trainval], y[test][te_sel]
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
    order = tv_labelled[label_order(np.asarray(videos.ids)[trainval][tv_labelled])]
    labelled = {f: labelled_subset(order, f) for f in fractions}
    y_frac = {f: _only_rows(y_tv, labelled[f]) for f in fractions}
    workers = max(1, int(config.workers))
    shared = _Shared(config=config, device=device, protocols=protocols, fractions=fractions,
                     labelled=labelled, y_frac=y_frac, y_tv=y_tv, y_te=y_te, te_sel=te_sel,
                     x_tv=x_tv, x_te=x_te, ids=np.asarray(videos.ids), trainval=trainval, test=test,
                     evaluated=evaluated is not None, resume=resume,
                     progress=progress and workers == 1)  # bars of parallel workers would interleave
    seconds: dict[str, float] = {}  # wall time per stage (summed over workers), to cost each row
    provenance = {
        "dataset": config.dataset,
        "source": paths.relative(videos.source),
        "synthetic": bool(videos.synthetic),
        "num_videos": int(len(videos)),
        "split": {"train": int(len(split.train)), "val": int(len(split.val)),
                  "test": int(len(test))},
        "split_rule": prepared.split_rule,
        "num_classes": int(videos.num_classes),
        "num_classes_evaluated": int((np.asarray(y_te.sum(0)).ravel() > 0).sum()),
        "evaluated": evaluated is not None,
        "labelled": {"trainval": int(len(tv_labelled) if evaluated is not None else 0),
                     "test": int(len(y_te.indptr) - 1 if evaluated is not None else 0),
                     "videos": int(labelled_mask(y).sum())},
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
        "precision": resolve_precision(config.precision, device),
        "workers": {"processes": workers,
                    "torch_threads": threads_per_worker(workers) if workers > 1 else None},
        "git_commit": git_commit(),
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "skipped": videos.skipped.counts() if videos.skipped is not None else {},
        "stage_seconds": seconds,
    }
    # The independent units of the run, heaviest first so that parallel workers finish together:
    # each variant and seed (pre-training, probe, fine-tuning), the baselines at full labels, the
    # frame heads, then the baselines at fewer labels (seconds each) fill the last gaps.
    baseline_units: list = []
    frame_units: list = []
    if config.baselines and evaluated is not None:
        from vidsage_core.baselines import (PropagationConfig, knn_neighbours, label_propagation,
                                            sgc_features, sign_features)

        print(f"[run] baselines on {len(trainval)} train+val / {len(test)} test videos", flush=True)
        pconf = PropagationConfig(**config.propagation_overrides)
        provenance["propagation"] = dataclasses.asdict(pconf)
        provenance["sign_hops"] = config.sign_hops
        t0 = time.perf_counter()
        # One kNN graph for smoothing, SIGN, label propagation and C&S, computed here once.
        nb = knn_neighbours(x_tv, x_te, config.sgc_k, device, config.knn_mode)
        f_tv, f_te = sgc_features(x_tv, x_te, neighbours=nb)
        s_tv, s_te = sign_features(x_tv, x_te, nb, config.sign_hops)
        _add_seconds(seconds, {"baseline_features": time.perf_counter() - t0})
        # Label propagation has no seed: its scores are computed once per fraction and scored
        # once per seed by the baseline units, so that every method has one row per seed.
        propagated = {}
        for fraction in fractions:
            t0 = time.perf_counter()
            _, lp_te = label_propagation(y_frac[fraction], labelled[fraction], nb, pconf)
            propagated[fraction] = (lp_te, time.perf_counter() - t0)
            _add_seconds(seconds, {"labelprop": propagated[fraction][1]})
        # Retrieval scores of the raw and smoothed features do not depend on the seed either.
        retrieval = {"raw": _retrieval(shared, x_tv, x_te), "sgc": _retrieval(shared, f_tv, f_te)}
        shared.baseline = _BaselineInputs(nb, f_tv, f_te, s_tv, s_te, pconf, propagated, retrieval)
        baseline_units = [(_baseline_unit, (seed, fraction)) for fraction in sorted(fractions, reverse=True)
                          for seed in config.seeds]
    if videos.frames is not None and config.frame_heads and evaluated is not None:
        from vidsage_core.evaluate import FrameInput

        shared.frames = (FrameInput(videos.frames[trainval], videos.num_frames[trainval]),
                         FrameInput(videos.frames[test], videos.num_frames[test]))
        print(f"[run] frame-level baselines on {len(trainval)} videos", flush=True)
        frame_units = [(_frame_unit, (seed,)) for seed in config.seeds]
    for variant in config.variants:
        graph, object_sets, source = build_variant_graph(variant, prepared, config, progress)
        attach = {}
        if object_sets is not None:
            attach = {"objects_train": [object_sets[i] for i in trainval],
                      "objects_new": [object_sets[i] for i in test]}
        shared.graphs[variant] = (graph, attach, source.name if source is not None else None)
    full = len(config.seeds) if baseline_units else 0
    units = ([(_variant_unit, (variant, seed)) for variant in config.variants for seed in config.seeds]
             + baseline_units[:full] + frame_units + baseline_units[full:])
    if workers > 1:
        print(f"[run] {len(units)} units on {workers} worker processes "
              f"({threads_per_worker(workers)} torch thread(s) each)", flush=True)

    done: dict[int, list[dict]] = {}
    for i, (unit_rows, unit_seconds) in run_units(units, shared, workers):
        done[i] = unit_rows
        _add_seconds(seconds, unit_seconds)
        print(f"[run] {len(done)}/{len(units)} done: {_unit_name(units[i])} "
              f"({sum(unit_seconds.values()):.0f} s; {time.perf_counter() - t_start:.0f} s since the start)",
              flush=True)
        for r in unit_rows:
            print(f"  {r['method']:<34} f={r['label_fraction']:<5g} seed {r['seed']}: GAP {r['gap']:.4f}  "
                  f"hit@1 {r['hit_at_one']:.4f}  PERR {r['perr']:.4f}  mAP@20 {r['map']:.4f}", flush=True)
        save_json({"rows": _ordered_rows(units, done), "provenance": provenance}, out / "metrics.json")
    provenance["total_seconds"] = time.perf_counter() - t_start
    metrics = {"rows": _ordered_rows(units, done), "provenance": provenance}
    save_json(metrics, out / "metrics.json")
    return metrics


def _add_seconds(total: dict[str, float], more: dict[str, float]) -> None:
    for stage, s in more.items():
        total[stage] = total.get(stage, 0.0) + float(s)


def _unit_name(unit) -> str:
    fn, args = unit
    if fn is _baseline_unit:
        return f"baselines, seed {args[0]}, label fraction {args[1]:g}"
    if fn is _frame_unit:
        return f"frame-level heads, seed {args[0]}"
    return f"{VARIANT_METHOD[args[0]]}, seed {args[1]}"


def _ordered_rows(units: list, done: dict[int, list[dict]]) -> list[dict]:
    """The finished units' rows in one order whatever order the workers finished in: baselines
    by label fraction then seed, frame heads, then each variant by seed."""
    def key(i: int):
        fn, args = units[i]
        if fn is _baseline_unit:
            seed, fraction = args
            return (0, "", fraction, seed)
        if fn is _frame_unit:
            return (1, "", 0.0, args[0])
        variant, seed = args
        return (2, variant, 0.0, seed)

    return [r for i in sorted(done, key=key) for r in done[i]]


@dataclass
class _BaselineInputs:
    """What the baseline units share: one kNN graph and the features and scores built on it."""

    neighbours: Any  # baselines.knn_neighbours of the train+val and test videos
    sgc_tv: np.ndarray
    sgc_te: np.ndarray
    sign_tv: np.ndarray
    sign_te: np.ndarray
    propagation: Any  # baselines.PropagationConfig
    propagated: dict  # fraction -> (label-propagation scores of the test videos, seconds)
    retrieval: dict  # "raw" / "sgc" -> their label-sharing retrieval scores


@dataclass
class _Shared:
    """The read-only inputs of every unit of a run (sent once to each worker process)."""

    config: RunConfig
    device: str
    protocols: tuple[str, ...]
    fractions: tuple[float, ...]
    labelled: dict  # fraction -> int64 rows of the train+val videos whose labels may be read
    y_frac: dict  # fraction -> CSR [N_tv, C] with every other row emptied
    y_tv: Any
    y_te: Any  # labels of the labelled test videos (te_sel)
    te_sel: Any
    x_tv: np.ndarray
    x_te: np.ndarray
    ids: np.ndarray
    trainval: np.ndarray
    test: np.ndarray
    evaluated: bool
    resume: bool
    progress: bool
    baseline: _BaselineInputs | None = None
    frames: tuple | None = None  # (FrameInput train+val, FrameInput test)
    graphs: dict = field(default_factory=dict)  # variant -> (graph, attach, object source name)


class _Recorder:
    """The rows and stage times of one unit, and the scoring every unit shares."""

    def __init__(self, shared: _Shared) -> None:
        self.s = shared
        self.rows: list[dict] = []
        self.seconds: dict[str, float] = {}

    def result(self) -> tuple[list[dict], dict[str, float]]:
        return self.rows, self.seconds

    def timed(self, stage: str, t0: float) -> float:
        dt = time.perf_counter() - t0
        _add_seconds(self.seconds, {stage: dt})
        return dt

    def score(self, variant, head, seed, scores_te, fraction, extra=None, **fields) -> None:
        s = self.s
        # The only place test labels are read (the labelled test videos: te_sel).
        self.rows.append(_row(variant, head, seed, all_metrics(scores_te[s.te_sel], s.y_te),
                              label_fraction=fraction, num_labelled=len(s.labelled[fraction]),
                              **fields))
        self.rows[-1].update(extra or {})

    def heads_on(self, variant, f_tv, f_te, seed, fraction, heads, keep=False, **fields) -> dict:
        """Fit each head on the labelled rows at ``fraction``; score it on the test rows."""
        from vidsage_core.evaluate import fit_head, predict

        s, config = self.s, self.s.config
        lab, kept = s.labelled[fraction], {}
        every = lab.size == s.y_tv.shape[0]  # all labels: fit on the inputs as given (frame inputs too)
        x_fit = f_tv if every else _take(f_tv, lab)
        y_fit = s.y_frac[fraction] if every else s.y_frac[fraction][lab]
        extra = {}
        if fraction == max(s.fractions) and variant in RETRIEVAL_VARIANTS:
            seedless = s.baseline.retrieval if s.baseline is not None else {}
            extra = seedless[variant] if variant in seedless else _retrieval(s, f_tv, f_te)
        for head in heads:
            hc = head_config(config, variant, head, seed, s.device, fraction)
            t0 = time.perf_counter()
            fitted = fit_head(head, x_fit, y_fit, hc)
            fit_seconds = time.perf_counter() - t0
            scores_te = predict(fitted, f_te)
            if keep:  # base predictions of every train+val video, for Correct & Smooth
                kept[head] = (predict(fitted, f_tv), scores_te)
            self.score(variant, head, seed, scores_te, fraction, extra, fit_seconds=fit_seconds,
                       **fields)
        return kept


def _retrieval(s: "_Shared", f_tv, f_te) -> dict:
    """Label-sharing retrieval of these features: labelled test videos query the labelled
    train+val videos."""
    from vidsage_core.retrieval import label_retrieval

    db = s.labelled[max(s.fractions)]
    return label_retrieval(f_te[s.te_sel], s.y_te, f_tv[db], s.y_tv[db])


def head_config(config: RunConfig, variant: str, head: str, seed: int, device: str,
                fraction: float = 1.0):
    """The HeadConfig of one row's head: its input's schedule (``config.head_schedule``), the
    user's ``head_overrides``, and more epochs below full labels (:func:`epochs_at_fraction`)."""
    from vidsage_core.evaluate import HeadConfig

    schedule = config.head_schedule.get(variant, {})
    hc = HeadConfig(**{"seed": seed, "device": device, "precision": config.precision,
                       **schedule.get(head, {}), **config.head_overrides})
    return dataclasses.replace(hc, epochs=epochs_at_fraction(hc.epochs_for(head), fraction,
                                                             config.fraction_epoch_factor))


def epochs_at_fraction(epochs: int, fraction: float, factor: float) -> int:
    """Epochs at a label fraction: passes over fewer labelled videos, so more of them
    (``min(1 / fraction, factor)`` times the full-label ``epochs``; RunConfig.fraction_epoch_factor)."""
    return max(1, round(epochs * min(1.0 / fraction, factor)))


def _heads_at(config: RunConfig, fraction: float, full: tuple[str, ...]) -> tuple[str, ...]:
    return full if fraction == 1.0 else config.fraction_heads


def _baseline_unit(s: _Shared, seed: int, fraction: float) -> tuple[list[dict], dict]:
    """The baseline rows (protocol "none") of one seed at one label fraction."""
    from vidsage_core.baselines import correct_and_smooth

    rec, b, config = _Recorder(s), s.baseline, s.config
    t0 = time.perf_counter()
    base = rec.heads_on("raw", s.x_tv, s.x_te, seed, fraction, _heads_at(config, fraction, config.heads),
                        keep=True)
    rec.heads_on("sgc", b.sgc_tv, b.sgc_te, seed, fraction, _heads_at(config, fraction, config.gnn_heads))
    rec.timed("raw_sgc_heads", t0)
    t0 = time.perf_counter()
    rec.heads_on("sign", b.sign_tv, b.sign_te, seed, fraction, _heads_at(config, fraction, config.gnn_heads))
    rec.timed("sign_heads", t0)
    lp_te, lp_seconds = b.propagated[fraction]
    rec.score("lp", "none", seed, lp_te, fraction, method="labelprop", fit_seconds=lp_seconds)
    for head, (b_tv, b_te) in base.items():
        t0 = time.perf_counter()
        _, cs_te = correct_and_smooth(b_tv, b_te, s.y_frac[fraction], s.labelled[fraction],
                                      b.neighbours, b.propagation)
        rec.score("cs", head, seed, cs_te, fraction, fit_seconds=rec.timed("correct_smooth", t0))
    return rec.result()


def _frame_unit(s: _Shared, seed: int) -> tuple[list[dict], dict]:
    """Frame-level heads of one seed, all labels only (they are Table 2's paper rows)."""
    rec = _Recorder(s)
    frames_tv, frames_te = s.frames
    rec.heads_on("frame", frames_tv, frames_te, seed, 1.0 if 1.0 in s.labelled else s.fractions[-1],
                 s.config.frame_heads)
    return rec.result()


def _variant_unit(s: _Shared, variant: str, seed: int) -> tuple[list[dict], dict]:
    """One GNN variant and seed: unsupervised training, embeddings, probe and fine-tune rows."""
    rec, config = _Recorder(s), s.config
    graph, attach, source_name = s.graphs[variant]
    vdir = Path(config.out) / variant
    fields = {"seed": seed, "device": s.device, **config.train_overrides}
    if config.epochs is not None:
        fields["epochs"] = config.epochs
    tconf = TrainConfig(**fields)
    print(f"[run] {VARIANT_METHOD[variant]} seed {seed}: unsupervised training on "
          f"{graph.num_nodes} nodes (no labels)", flush=True)
    t0 = time.perf_counter()
    z_tv, z_te, _ = train_and_embed(s.x_tv, graph, s.x_te, tconf, vdir / f"seed{seed}", attach,
                                    resume=s.resume, progress=s.progress)
    pretrain_seconds = rec.timed("pretrain", t0)
    write_run_embeddings(vdir / f"seed{seed}" / "embeddings.npz", s.ids, s.trainval, s.test, z_tv, z_te)
    if not s.evaluated:
        return rec.result()  # no labels (or --no-eval): embeddings only
    gnn = {"object_source": source_name, "init": "unsupervised"}
    if "probe" in s.protocols:
        t0 = time.perf_counter()
        for fraction in s.fractions:
            heads = _heads_at(config, fraction, config.gnn_heads)
            rec.heads_on(variant, z_tv, z_te, seed, fraction, heads, protocol="probe",
                         train_seconds=pretrain_seconds, **gnn)
            if config.concat_raw:
                rec.heads_on(f"{variant}+raw", np.concatenate([s.x_tv, z_tv], 1),
                             np.concatenate([s.x_te, z_te], 1), seed, fraction, heads,
                             protocol="probe", train_seconds=pretrain_seconds, **gnn)
        rec.timed("probe_heads", t0)
    if "finetune" in s.protocols:
        _finetune_rows(rec, tconf, variant, seed, graph, attach, vdir, pretrain_seconds, source_name)
    return rec.result()


def run_streamed(config: RunConfig, progress: bool = True,
                 on_stage: Callable[[str], None] | None = None) -> dict:
    """``vidsage run --stream``: the protocol of :func:`run` for millions of videos, bounded memory.

    TFRecords -> train+val / test feature stores (:func:`vidsage_core.data.stream.stream_tfrecords`,
    same hash split) -> LiteVidSage graph over the train+val store (``config.knn_mode``;
    "ivf-gemm" reads the float16 store list by list) -> :func:`~vidsage_core.train.train` from the
    store (sampled subgraphs read their rows per step; ``train_overrides={"max_steps": n}`` for a
    timed partial run) -> :func:`~vidsage_core.embed.embed` of every train+val video into a float16
    ``.npy`` (layer-wise) -> test videos attached inductively in blocks -> heads on
    ``head_sample`` videos per split (minibatches read from the stores).

    Args:
        config: the run (``stream`` is implied; ``variants`` must be ``("lite",)`` or empty). With
            ``prepare_only`` it stops after the store and the graph (the inputs of ``torchrun -m
            vidsage_core.train --features OUT/store/trainval/features.npy --graph OUT/lite/graph.pt``).
        progress: tqdm bars.
        on_stage: called with each stage's name as it starts ("read", "graph", "train", "embed",
            "embed_test", "heads") and with "done" at the end: a hook for memory polling.

    Returns:
        The content of ``metrics.json``; ``provenance["stage_seconds"]`` holds each stage's wall time.
    """
    from vidsage_core.evaluate import evaluate_head
    from vidsage_core.graph import lite_graph
    from vidsage_core.data.stream import stream_tfrecords

    if set(config.variants) - {"lite"}:
        raise ValueError(f"--stream builds LiteVidSage graphs only (object sources need the VideoSet in memory); "
                         f"got variants {config.variants}: use --variant lite")
    t_start = time.perf_counter()
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    device = resolve_device(config.device)
    save_json({**saved_config(config), "resolved_device": device}, out / "config.json")
    (out / "metrics.json").unlink(missing_ok=True)
    seconds: dict[str, float] = {}
    clock = [None, time.perf_counter()]

    def stage(name: str) -> None:
        now = time.perf_counter()
        if clock[0] is not None:
            seconds[clock[0]] = seconds.get(clock[0], 0.0) + now - clock[1]
        clock[:] = [name, now]
        if name != "done":
            print(f"[run] {name} ...", flush=True)
        if on_stage is not None:
            on_stage(name)

    stage("read")
    streamed = stream_tfrecords(config.data, out / "store", config.modality, on_error=config.on_error,
                                level=config.level, max_videos=config.max_videos, progress=progress)
    tv, te = streamed.trainval, streamed.test
    if len(tv) < 10 or len(te) == 0:
        raise ValueError(f"{config.data}: {len(tv)} train+val and {len(te)} test videos; need >= 10 and >= 1")
    rng = np.random.default_rng(0)
    s_tv = np.arange(len(tv)) if config.head_sample is None or config.head_sample >= len(tv) else \
        np.sort(rng.choice(len(tv), config.head_sample, replace=False))
    s_te = np.arange(len(te)) if config.head_sample is None or config.head_sample >= len(te) else \
        np.sort(rng.choice(len(te), config.head_sample, replace=False))
    y_tv, y_te = tv.labels[s_tv], te.labels[s_te]
    rows: list[dict] = []
    provenance = {
        "dataset": config.dataset, "source": streamed.source, "synthetic": False,
        "num_videos": int(len(tv) + len(te)), "split": {"trainval": int(len(tv)), "test": int(len(te))},
        "split_rule": streamed.split_rule, "num_classes": int(tv.num_classes), "modality": config.modality,
        "feature_dim": int(tv.x.shape[1]), "store_dtype": str(tv.x.dtype), "seeds": list(config.seeds),
        "device": device, "precision": resolve_precision(config.precision, device),
        "git_commit": git_commit(),
        "head_sample": {"trainval": int(len(s_tv)), "test": int(len(s_te))},
        "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
        "skipped": streamed.skipped.counts(), "stage_seconds": seconds,
    }

    def rows_of(x: np.ndarray, sel: np.ndarray) -> np.ndarray:
        return x if len(sel) == x.shape[0] else np.asarray(x[sel], dtype=np.float32)

    def heads_on(variant, f_tv, f_te, seed, train_seconds=None, heads=None):
        for head in heads or config.gnn_heads:
            hc = head_config(config, variant, head, seed, device)
            m = evaluate_head(head, rows_of(f_tv, s_tv), y_tv, rows_of(f_te, s_te), y_te, hc, progress=False)
            rows.append(_row(variant, head, seed, m, None, train_seconds,
                             protocol="none" if variant == "raw" else "probe",
                             fit_seconds=m.get("fit_seconds", float("nan"))))
            r = rows[-1]
            print(f"  {r['method']:<24} seed {seed}: GAP {r['gap']:.4f}  hit@1 {r['hit_at_one']:.4f}", flush=True)
            save_json({"rows": rows, "provenance": provenance}, out / "metrics.json")

    if config.baselines:
        stage("heads")
        for seed in config.seeds:
            heads_on("raw", tv.x, te.x, seed, heads=config.heads)
    for variant in config.variants:
        vdir = out / variant
        vdir.mkdir(parents=True, exist_ok=True)
        stage("graph")
        graph = lite_graph(tv.x, mode=config.knn_mode, device=device, progress=progress)
        graph.save(vdir / "graph.pt")
        provenance[f"{variant}_graph"] = {"num_nodes": graph.num_nodes, "num_edges": graph.num_undirected_edges}
        if config.prepare_only:  # the inputs of `torchrun -m vidsage_core.train`
            print(f"[run] prepared {out}/store/trainval/features.npy and {vdir}/graph.pt", flush=True)
            continue
        for seed in config.seeds:
            sdir = vdir / f"seed{seed}"
            fields = {"seed": seed, "device": device, **config.train_overrides}
            if config.epochs is not None:
                fields["epochs"] = config.epochs
            stage("train")
            t0 = time.perf_counter()
            result = train(tv.x, graph, TrainConfig(**fields), sdir, progress=progress)
            train_seconds = time.perf_counter() - t0
            stage("embed")
            width = result.model.out_dim if hasattr(result.model, "out_dim") else result.config.out_dim
            z_tv = np.lib.format.open_memmap(sdir / "embeddings_trainval.npy", mode="w+", dtype=np.float16,
                                             shape=(len(tv), width))
            embed(result.model, tv.x, graph, device=device, out=z_tv, work_dir=sdir, progress=progress)
            z_tv.flush()
            stage("embed_test")
            emb = InductiveEmbedder(result.model, tv.x, graph, device=device, mode=config.knn_mode)
            z_te = np.lib.format.open_memmap(sdir / "embeddings_test.npy", mode="w+", dtype=np.float16,
                                             shape=(len(te), width))
            block = 65_536  # new videos are independent of each other: blocks give the same rows
            for s0 in range(0, len(te), block):
                z_te[s0:s0 + block] = emb.embed(np.asarray(te.x[s0:s0 + block], dtype=np.float32))
            z_te.flush()
            save_json({"rule": emb.params(), "num_new": int(len(te))}, sdir / "attach.json")
            stage("heads")
            heads_on(variant, z_tv, z_te, seed, train_seconds)
    stage("done")
    provenance["total_seconds"] = time.perf_counter() - t_start
    metrics = {"rows": rows, "provenance": provenance}
    save_json(metrics, out / "metrics.json")
    return metrics


#: FinetuneConfig fields finetune.paper_config fixes: RunConfig.finetune_overrides never change
#: them for the paper-exact row (epochs, lr, batch size... still apply).
_PAPER_PINNED = ("skip", "hidden_dim", "final_activation", "aggr", "edge_weights", "dropout")


def _finetune_rows(rec: _Recorder, tconf, variant: str, seed: int, graph, attach: dict, vdir: Path,
                   pretrain_seconds: float, source_name) -> None:
    """The finetune protocol's rows of one variant and seed: every label fraction from the
    unsupervised checkpoint, then the ablations (random init, paper-exact) with all labels.

    The encoder is the pre-trained one (``tconf``'s width and final activation, also for the
    random-init ablation: "the same network"), unless ``finetune_overrides`` says otherwise.
    """
    from vidsage_core.finetune import FinetuneConfig, finetune, paper_config, paper_train_overrides
    from vidsage_core.train import TrainConfig, train

    s, config = rec.s, rec.s.config
    labelled, x_tv, progress = s.labelled, s.x_tv, s.progress
    fields = {"seed": seed, "device": s.device, "hidden_dim": tconf.hidden_dim,
              "final_activation": tconf.final_activation, "precision": config.precision,
              **config.finetune_overrides}
    sdir = vdir / f"seed{seed}"
    name = VARIANT_METHOD[variant]
    base = {"protocol": "finetune", "object_source": source_name}

    def one(fraction, fconf, init, out_dir, method, init_name, preset, train_seconds, stage):
        print(f"[run] {method} seed {seed}: fine-tuning on {len(labelled[fraction])} labelled "
              f"videos (label fraction {fraction:g})", flush=True)
        t0 = time.perf_counter()
        res = finetune(x_tv, graph, s.y_frac[fraction], labelled[fraction], s.x_te, attach, fconf,
                       out_dir, init=init, progress=progress)
        rec.timed(stage, t0)
        rec.score(variant, fconf.classifier, seed, res.scores_test, fraction, method=method, init=init_name,
                  preset=preset, train_seconds=train_seconds, fit_seconds=res.seconds, **base)

    for fraction in sorted(labelled):
        fconf = FinetuneConfig(**fields)
        # Epochs are passes over the labelled videos: fewer labels, more passes (as the heads').
        fconf = dataclasses.replace(fconf, epochs=epochs_at_fraction(fconf.epochs, fraction,
                                                                     config.fraction_epoch_factor))
        one(fraction, fconf, sdir / "model.pt", sdir / f"finetune-f{fraction:g}",
            f"{name}-finetune", "unsupervised", "default", pretrain_seconds, "finetune")
    full = max(labelled)  # the ablations read all the labels the run gives (1.0 by default)
    if "random-init" in config.finetune_ablations:
        one(full, FinetuneConfig(**fields), None, sdir / "finetune-random-init",
            f"{name}-finetune-random-init", "random", "default", None, "finetune_random_init")
    if "moe-layer" in config.finetune_ablations and variant in config.moe_layer_variants:
        one(full, FinetuneConfig(**{**fields, "classifier": "moe"}), sdir / "model.pt",
            sdir / "finetune-moe-layer", f"{name}-finetune-moe", "unsupervised", "moe-layer",
            pretrain_seconds, "finetune_moe_layer")
    if "paper-exact" in config.finetune_ablations:
        tfields = {"seed": seed, "device": s.device, **config.train_overrides,
                   **paper_train_overrides(x_tv.shape[1])}
        if config.epochs is not None:
            tfields["epochs"] = config.epochs
        pdir = vdir / f"seed{seed}-paper-exact"
        print(f"[run] {name} seed {seed}: unsupervised training of the paper-exact encoder "
              f"(width {x_tv.shape[1]})", flush=True)
        t0 = time.perf_counter()
        train(x_tv, graph, TrainConfig(**tfields), pdir, progress=progress)
        paper_pretrain = rec.timed("pretrain_paper_exact", t0)
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
    parser.add_argument("--finetune-ablations", nargs="*", choices=FINETUNE_ABLATIONS,
                        default=list(d.finetune_ablations),
                        help="ablation rows of the finetune protocol, at all labels (none: give the flag "
                             "alone; default: %(default)s)")
    parser.add_argument("--moe-layer-variants", nargs="+", choices=GRAPH_VARIANTS,
                        default=list(d.moe_layer_variants),
                        help="variants the moe-layer ablation fine-tunes (default: %(default)s)")
    parser.add_argument("--label-fractions", type=float, nargs="+", default=list(d.label_fractions),
                        help="fractions of the train+val labels given to heads, baselines and "
                             "fine-tuning (nested subsets), e.g. 0.01 0.05 0.25 1 "
                             "(default: %(default)s)")
    parser.add_argument("--knn-mode", choices=("exact", "ivf-gemm", "ivf", "hnsw"), default=d.knn_mode,
                        help="neighbour search for the graphs: exact, or approximate for millions of "
                             "videos (ivf-gemm is the fastest for whole graphs; default: %(default)s)")
    parser.add_argument("--on-error", choices=("skip", "raise"), default=d.on_error,
                        help="bad records: skip and report (default) or stop at the first")
    parser.add_argument("--no-eval", action="store_true",
                        help="train and embed only: no heads, no retrieval scores (automatic when "
                             "the data carry no labels)")
    parser.add_argument("--resume", action="store_true",
                        help="continue interrupted training from each seed's checkpoint.pt")
    parser.add_argument("--stream", action="store_true",
                        help="millions of videos: stream the TFRecords into on-disk float16 stores and train, "
                             "embed and fit heads from them with bounded memory (LiteVidSage only)")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="stop training after this many steps (a timed partial run; schedule unchanged)")
    parser.add_argument("--head-sample", type=int, default=None,
                        help="fit and score the heads on this many videos per split (default: all)")
    parser.add_argument("--precision", choices=PRECISIONS, default=d.precision,
                        help="matrix products of the heads and fine-tuning: fp32, bf16 (fp32 weights), "
                             "or auto: bf16 on a CPU with native bf16, else fp32 (default: %(default)s)")
    parser.add_argument("--workers", type=int, default=d.workers,
                        help="processes running the independent units (baselines of a seed and label "
                             "fraction; a variant and seed) side by side, cores shared out as torch "
                             "threads; results are deterministic for a given value (default: %(default)s)")
    parser.add_argument("--prepare-only", action="store_true",
                        help="only write OUT/features_trainval.npy and OUT/<variant>/graph.pt, the "
                             "inputs of `torchrun -m vidsage_core.train` (multi-GPU training)")


def run_command(args: argparse.Namespace) -> int:
    variants = {"all": GRAPH_VARIANTS, "none": ()}.get(args.variant, (args.variant,))
    if "vidsage" in variants:  # fail before reading any data
        from vidsage_core.objects import get_object_source

        try:
            get_object_source(args.objects)
        except ValueError as e:
            raise ValueError(f"--objects {args.objects}: {e}") from None
    config = RunConfig(data=args.data, out=args.out, dataset=args.dataset, level=args.level,
                       variants=variants, objects=args.objects,
                       seeds=tuple(range(args.seeds)), epochs=args.epochs,
                       heads=tuple(args.heads), max_videos=args.max_videos, device=args.device,
                       baselines=not args.no_baselines, on_error=args.on_error, knn_mode=args.knn_mode,
                       prepare_only=args.prepare_only, evaluate=not args.no_eval, stream=args.stream,
                       head_sample=args.head_sample, protocol=args.protocol,
                       label_fractions=tuple(args.label_fractions),
                       finetune_ablations=tuple(args.finetune_ablations),
                       moe_layer_variants=tuple(args.moe_layer_variants), workers=args.workers,
                       precision=args.precision,
                       train_overrides={} if args.max_steps is None else {"max_steps": args.max_steps})
    if config.stream and args.variant == "all":
        config = dataclasses.replace(config, variants=("lite",))  # the streamed path's only graph
    # Bars only on a terminal: in logs and pipes they would bury the one-line errors.
    progress = sys.stderr.isatty()
    metrics = (run_streamed(config, progress=progress) if config.stream
               else run(config, progress=progress, resume=args.resume))
    if config.prepare_only:
        return 0
    out = Path(args.out)
    made = [out / v / f"seed{s}" / "embeddings.npz" for v in config.variants for s in config.seeds]
    if made:
        print(f"\nembeddings of {metrics['provenance']['num_videos']} videos: "
              + ", ".join(str(p) for p in made))
    print(f"wrote {out / 'metrics.json'} ({len(metrics['rows'])} rows, "
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
    # The paper-exact ablation pre-trains and fine-tunes a 1152-wide encoder: ~18x the arithmetic
    # of the 128-wide one per step (finetune.paper_config), far beyond the artifact's 20-minute
    # budget on 2 CPU cores at 14k videos, so the full artifact leaves it out; smoke runs keep
    # every ablation (the code paths stay tested), and paper_exact_run names the command that
    # runs it on demand beside this run (Table 2 then shows its rows). The MoE-layer ablation
    # (head for head with the MoE baselines) costs ~2x a logistic fine-tuning; it runs for
    # VidSage, the paper's method, to stay within the budget.
    # Two worker processes: the units side by side fill both cores of the 2-core machine the
    # 20-minute budget is measured on (vidsage_core.workers).
    fields = {"heads": ("logistic", "hinge", "moe"), "protocol": "both",
              "label_fractions": ARTIFACT_LABEL_FRACTIONS, "finetune_ablations": ("random-init", "moe-layer"),
              "moe_layer_variants": ("vidsage",), "workers": 2, **fields}
    if smoke:
        fields["finetune_ablations"] = FINETUNE_ABLATIONS
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


def paper_exact_run(config: RunConfig) -> Path | None:
    """The on-demand paper-exact run beside ``config``'s, ``<out>-paper-exact``, if it finished.

    The paper-exact ablation (``finetune.paper_config`` on a 1152-wide pre-trained encoder) costs
    ~18x the artifact's arithmetic per step, so ``./reproduce.sh`` does not run it; this command
    does (LiteVidSage, one seed; 47 min measured on a shared 2-core CPU at 14k videos), and Table 2 then
    shows its rows with their own provenance (``tables.table2(paper_exact_run_dir=...)``)::

        python -m vidsage_core run --variant lite --seeds 1 --protocol finetune \\
            --finetune-ablations paper-exact --no-baselines --out results/runs/yt8m-paper-exact
    """
    out = Path(f"{config.out}-paper-exact")
    return out if (out / "metrics.json").is_file() else None


def run_if_missing(config: RunConfig, videos=None, split=None, progress: bool = True) -> dict:
    """Reuse ``config.out``'s metrics when they were made with this very config, else run.

    What the table notebooks call: they train only what is missing, and say so.
    """
    out = Path(config.out)
    wanted = saved_config(config)
    if (out / "metrics.json").exists() and (out / "config.json").exists():
        # A config saved before a field existed holds that field's default.
        saved = {**json.loads(json.dumps(to_jsonable(RunConfig()))), **load_json(out / "config.json")}
        saved.pop("resolved_device", None)
        metrics = load_json(out / "metrics.json")
        # A clone carries the run's JSONs but not its models and embeddings (git-ignored), which
        # the latency table and the figures read: those must be on disk too.
        missing = [p for p in _run_artifacts(out, config) if not p.exists()]
        if saved == wanted and "total_seconds" in metrics["provenance"] and not missing:
            print(f"[run] {paths.relative(out)}: complete results for this configuration exist; "
                  "not re-run")
            return metrics
        if saved == wanted and missing:
            print(f"[run] {paths.relative(out)}: metrics exist but {len(missing)} model/embedding "
                  f"files do not (e.g. {paths.relative(missing[0])}); running it again")
    print(f"[run] {paths.relative(out)}: no complete results for this configuration; running it now")
    if config.stream:
        return run_streamed(config, progress=progress)
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
        from vidsage_core.objects import load_object_source

        path = self.out / variant / OBJECT_SOURCE
        if not path.is_file():
            return None
        return load_object_source(path).object_sets(self.videos)

    def embeddings(self, variant: str, seed: int = 0, part: str = "trainval") -> np.ndarray:
        """float32 [rows of ``part``, d'] GNN embeddings ("trainval", "test" or "all")."""
        from vidsage_core.retrieval import load_embeddings

        _, z = load_embeddings(self.out / variant / f"seed{seed}" / "embeddings.npz")
        rows = {"trainval": self.trainval, "test": self.test, "all": slice(None)}
        if part not in rows:
            raise ValueError(f"part must be one of {sorted(rows)}, got {part!r}")
        return z[rows[part]]


def load_run(run_dir: str | Path) -> RunView:
    """Open a run directory written by :func:`run`."""
    from vidsage_core.data import VideoSet

    out = Path(run_dir)
    split = load_json(out / "split.json")
    return RunView(out, load_json(out / "config.json"), VideoSet.load(out / "data"),
                   np.asarray(split["trainval"], dtype=np.int64),
                   np.asarray(split["test"], dtype=np.int64))
