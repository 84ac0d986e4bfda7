"""``vidsage similar`` and Table 1's latency: one new video against a trained run (§3.5)."""

from __future__ import annotations

import argparse
import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vidsage_core import paths
from vidsage_core.utils import load_json, resolve_device
from vidsage_core.video.decode import VideoDecodeError, probe_video
from vidsage_core.video.encoder import FEATURE_DIM, FrameEncoder
from vidsage_core.video.ingest import AUDIO_DIM, IngestConfig, VideoFeatures, process_video, sync_device
from vidsage_core.video.tagging import ImageNetTagger

RUN_FILES = ("model.pt", "features.npy", "graph.pt", "ids.npy", "embeddings.npy")


@dataclass
class RunArtifacts:
    """What ``similar`` needs from a trained run (see :func:`load_run_artifacts`).

    Attributes:
        run_dir, variant: where it came from.
        config: ``RUN_DIR/config.json`` (empty when absent).
        model: the trained GNN (eval mode).
        features: float32 ``[N, D]`` L2-normalised node features the GNN was trained on.
        graph: the training ``VideoGraph``; its ``meta`` holds the attachment rule (``k``,
            ``tau``; ``alpha``, ``beta`` for VidSage) that ``infer`` reuses.
        ids: ``[N]`` video ids.
        embeddings: float32 ``[N, d']`` the run's embeddings of the training videos.
        labels: CSR ``[N, C]`` or None.
        object_sets: ``[N]`` object sets (VidSage graphs) or None (LiteVidSage).
    """

    run_dir: Path
    variant: str
    config: dict
    model: Any
    features: np.ndarray
    graph: Any
    ids: np.ndarray
    embeddings: np.ndarray
    labels: Any = None
    object_sets: list[frozenset[str]] | None = None

    def index(self):
        """A FAISS :class:`retrieval.EmbeddingIndex` over :attr:`embeddings` (built once)."""
        from vidsage_core.retrieval import EmbeddingIndex

        if getattr(self, "_index", None) is None:
            self._index = EmbeddingIndex(self.embeddings)
        return self._index

    def embedder(self, device: str = "auto"):
        """An ``infer.InductiveEmbedder`` over this run (builds the neighbour index once)."""
        from vidsage_core.infer import InductiveEmbedder

        return InductiveEmbedder(self.model, self.features, self.graph, self.object_sets, device=device)


def load_run_artifacts(run_dir: str | Path, variant: str = "vidsage", device: str = "cpu",
                       seed: int = 0) -> RunArtifacts:
    """Load a trained run for inductive inference of new videos.

    A ``vidsage run`` directory (``split.json`` + ``data/``) gives its ``seed``'s model and the
    train+val videos; every file is read without pickle (``safe_io``).

    Layout read (``V = RUN_DIR/<variant>``, or ``RUN_DIR`` itself when it holds ``model.pt``):

    * ``RUN_DIR/config.json`` (optional);
    * ``V/model.pt`` (``train.load_model``), ``V/features.npy`` float32 ``[N, D]`` (the
      L2-normalised node features), ``V/graph.pt`` (``VideoGraph.save``; ``meta`` has the graph
      rule), ``V/ids.npy`` ``[N]`` str, ``V/embeddings.npy`` float32 ``[N, d']``;
    * optional ``V/labels.npz`` (``scipy.sparse.save_npz``, ``[N, C]``) and ``V/objects.json``
      (``[N]`` lists of object labels; required for a VidSage graph).

    Raises:
        FileNotFoundError: naming the first missing file. ValueError: sizes disagree.
    """
    import scipy.sparse as sp

    from vidsage_core.graph import VideoGraph
    from vidsage_core.train import load_model

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--run {run_dir}: no such run directory")
    if (run_dir / "split.json").is_file() and (run_dir / "data").is_dir():
        return _from_pipeline_run(run_dir, variant, device, seed)
    vdir = run_dir / variant
    if not (vdir / "model.pt").is_file() and (run_dir / "model.pt").is_file():
        vdir = run_dir
    for name in RUN_FILES:
        if not (vdir / name).is_file():
            raise FileNotFoundError(f"run {run_dir} (variant {variant!r}): missing {vdir / name}")
    config = load_json(run_dir / "config.json") if (run_dir / "config.json").is_file() else {}
    labels = sp.load_npz(vdir / "labels.npz").tocsr() if (vdir / "labels.npz").is_file() else None
    objects = None
    if (vdir / "objects.json").is_file():
        objects = [frozenset(map(str, o)) for o in load_json(vdir / "objects.json")]
    ids = np.load(vdir / "ids.npy", allow_pickle=False)
    features = np.ascontiguousarray(np.load(vdir / "features.npy"), dtype=np.float32)
    embeddings = np.load(vdir / "embeddings.npy").astype(np.float32, copy=False)
    graph = VideoGraph.load(vdir / "graph.pt")
    sizes = {"ids": len(ids), "features": features.shape[0], "embeddings": embeddings.shape[0],
             "graph nodes": graph.num_nodes}
    if labels is not None:
        sizes["labels"] = labels.shape[0]
    if objects is not None:
        sizes["objects"] = len(objects)
    if len(set(sizes.values())) != 1:
        raise ValueError(f"run {vdir}: sizes disagree: {sizes}")
    return RunArtifacts(run_dir, variant, config, load_model(vdir, device=device), features, graph, ids,
                        embeddings, labels, objects)


def _from_pipeline_run(run_dir: Path, variant: str, device: str, seed: int = 0) -> RunArtifacts:
    """A ``vidsage run`` directory: the graph covers its train+val videos; seed 0's model."""
    from vidsage_core.pipeline import load_run
    from vidsage_core.train import load_model

    view = load_run(run_dir)
    model_dir = run_dir / variant / f"seed{seed}"
    if not (model_dir / "model.pt").is_file():
        raise FileNotFoundError(f"--variant {variant}: run {run_dir} has no trained {variant!r} model at "
                                f"{model_dir} (variants there: {_variants(run_dir)})")
    rows = view.trainval
    all_sets = view.object_sets(variant)
    objects = None if all_sets is None else [all_sets[i] for i in rows]
    return RunArtifacts(run_dir, variant, view.config, load_model(model_dir, device=device),
                        np.ascontiguousarray(view.x[rows]), view.graph(variant),
                        np.asarray(view.videos.ids)[rows], view.embeddings(variant, seed),
                        view.videos.labels.tocsr()[rows], objects)


def query_feature(vf: VideoFeatures, dim: int, path: str | Path = "") -> np.ndarray:
    """The new video's node feature in a run's feature space.

    Args:
        vf: the processed video.
        dim: the run's feature width: 1280 (``rgb``) or 1408 (``rgb+audio``: ingested audio is
            zeros, so the L2-normalised vector is ``[f_v, 0]``).
        path: named in errors.

    Returns:
        float32 ``[dim]``.
    """
    if dim == FEATURE_DIM:
        return vf.feature
    if dim == FEATURE_DIM + AUDIO_DIM:
        return np.concatenate([vf.feature, np.zeros(AUDIO_DIM, np.float32)])
    raise ValueError(f"{path}: the run's node features are {dim}-d but a raw video gives {FEATURE_DIM}-d (rgb) "
                     f"or {FEATURE_DIM + AUDIO_DIM}-d (rgb+audio) EfficientNet-Lite0 features; a run trained on "
                     "YouTube-8M's 1024-d Inception features cannot place a raw video")


def embed_new_video(vf: VideoFeatures, embedder: Any, path: str | Path = "") -> dict[str, Any]:
    """Attach one processed video to a run's graph and embed it inductively (§3.5).

    Args:
        vf: the processed video (its ``objects`` are used when the graph has object edges).
        embedder: an ``infer.InductiveEmbedder`` (:meth:`RunArtifacts.embedder`).
        path: named in errors.

    Returns:
        ``embedding`` float32 ``[d']``, ``edges`` (attachment edges), ``attach_s`` (kNN search +
        object-index look-up) and ``gnn_s`` (the GNN on the new node's computation subgraph).
    """
    x = query_feature(vf, embedder.x_train.shape[1], path)[None]
    t0 = time.perf_counter()
    edges = embedder.attachment_edges(x, [vf.objects] if embedder.use_objects else None)
    t1 = time.perf_counter()
    z = embedder.embed_attached(x, *edges)
    sync_device(embedder.device)
    return {"embedding": z[0], "edges": int(len(edges[0])), "attach_s": t1 - t0,
            "gnn_s": time.perf_counter() - t1}


def nearest_videos(z: np.ndarray, art: RunArtifacts, k: int = 10) -> list[dict[str, Any]]:
    """The ``k`` training videos whose embeddings have the highest cosine with ``z``.

    Returns:
        One dict per hit, best first: ``rank``, ``video_id``, ``cosine``, ``labels`` (class
        indices), ``objects`` (or None).
    """
    sims, idx = art.index().search(np.asarray(z, dtype=np.float32)[None], k)  # FAISS, not a scan
    out = []
    for rank, (s, i) in enumerate(zip(sims[0], idx[0]), start=1):
        if i < 0:
            continue
        out.append({"rank": rank, "video_id": str(art.ids[i]), "cosine": float(s),
                    "labels": art.labels[i].indices.tolist() if art.labels is not None else [],
                    "objects": sorted(art.object_sets[i]) if art.object_sets is not None else None})
    return out


def _label_names(num_classes: int | None) -> dict[int, str]:
    """YouTube-8M class names when the run's labels use its vocabulary (3862 classes)."""
    if num_classes != 3862 or not paths.VOCABULARY.is_file():
        return {}
    from vidsage_core.data import load_vocabulary

    vocab = load_vocabulary()
    return dict(zip(vocab["Index"].astype(int), vocab["Name"].astype(str)))


def _variants(run_dir: Path) -> list[str]:
    return sorted(p.parent.parent.name for p in run_dir.glob("*/seed*/embeddings.npz")) or \
        sorted(p.parent.name for p in run_dir.glob("*/model.pt"))


def neighbours_of_known_video(run_dir: str | Path, video_id: str, k: int = 10, variant: str = "vidsage",
                              seed: int = 0) -> list[dict[str, Any]]:
    """The ``k`` nearest other videos of a video of the run (``RUN/<variant>/seed<s>/embeddings.npz``).

    Every video of the run is searched (train+val and test), through FAISS
    (:func:`retrieval.neighbours_of`).

    Returns:
        One dict per hit, best first: ``rank``, ``video_id``, ``cosine``, ``labels`` (class
        indices; empty when the run has no labels for it).

    Raises:
        FileNotFoundError: no such run, variant or seed. KeyError: unknown ``video_id``.
    """
    from vidsage_core.retrieval import load_embeddings, neighbours_of

    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise FileNotFoundError(f"--run {run_dir}: no such run directory")
    path = run_dir / variant / f"seed{seed}" / "embeddings.npz"
    if not path.is_file():
        raise FileNotFoundError(f"--variant {variant} --seed {seed}: run {run_dir} has no {path} "
                                f"(variants with embeddings: {_variants(run_dir)})")
    ids, z = load_embeddings(path)
    try:
        hits = neighbours_of(ids, z, video_id, k)
    except KeyError:
        raise KeyError(f"--id {video_id}: not among the {len(ids)} videos of {path}") from None
    labels = None
    if (run_dir / "data" / "labels.npz").is_file():
        import scipy.sparse as sp

        labels = sp.load_npz(run_dir / "data" / "labels.npz").tocsr()
        if labels.shape[0] != len(ids):
            labels = None
    row = {str(v): i for i, v in enumerate(ids)}
    return [{"rank": r, "video_id": v, "cosine": c,
             "labels": labels[row[v]].indices.tolist() if labels is not None else []}
            for r, (v, c) in enumerate(hits, start=1)]


def similar_for_tfrecords(path: str | Path, art: RunArtifacts, k: int = 10,
                          device: str = "cpu") -> list[tuple[str, int, list[dict[str, Any]]]]:
    """Embed the videos of a TFRecord file inductively with a run and list their neighbours.

    Their features go through the run's modality and normalisation; a VidSage run's object
    sets come from its saved object source (``RUN/<variant>/object_source.json``).

    Returns:
        ``[(video id, attachment edges, hits)]`` per video of the file (hits as
        :func:`nearest_videos`).

    Raises:
        ValueError: the file's feature width differs from the run's, or it holds no video.
    """
    from vidsage_core.objects import load_object_source
    from vidsage_core.pipeline import OBJECT_SOURCE, load_videos

    videos = load_videos(str(path), progress=False)
    if len(videos) == 0:
        raise ValueError(f"{path}: no readable video")
    x = videos.features(art.config.get("modality", "rgb+audio"), normalize=True)
    if x.shape[1] != art.features.shape[1]:
        raise ValueError(f"{path}: videos have {x.shape[1]}-d features but run {art.run_dir} was "
                         f"trained on {art.features.shape[1]}-d features")
    sets = None
    embedder = art.embedder(device)
    if embedder.use_objects:
        source = art.run_dir / art.variant / OBJECT_SOURCE
        if not source.is_file():
            raise FileNotFoundError(f"{source}: the run's object source is needed to place new videos "
                                    "in a VidSage graph")
        sets = load_object_source(source).object_sets(videos)
    t, nw, w = embedder.attachment_edges(x, sets)
    z = embedder.embed_attached(x, t, nw, w)
    degree = np.bincount(nw, minlength=len(x))
    return [(str(videos.ids[i]), int(degree[i]), nearest_videos(z[i], art, k)) for i in range(len(x))]


def add_similar_arguments(parser: argparse.ArgumentParser) -> None:
    """Arguments of ``vidsage similar (FILE | --id VIDEO_ID) --run RUN_DIR``."""
    d = IngestConfig()
    parser.add_argument("file", metavar="FILE", nargs="?",
                        help="a new video: a clip (mp4, ...) or a YouTube-8M-format .tfrecord")
    parser.add_argument("--id", dest="video_id", metavar="VIDEO_ID",
                        help="instead of FILE: a video of the run, by id")
    parser.add_argument("--run", required=True, metavar="RUN_DIR", help="a trained run directory")
    parser.add_argument("--variant", default="vidsage", help="run sub-directory (default %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="which seed's model and embeddings (default %(default)s)")
    parser.add_argument("-k", "--k", type=int, default=10, help="neighbours to list (default %(default)s)")
    parser.add_argument("--rate", type=float, default=d.rate, help="sampled frames per second (default %(default)s)")
    parser.add_argument("--max-frames", type=int, default=d.max_frames, help="(default %(default)s)")
    parser.add_argument("--device", default="auto", help="auto, cpu or cuda (default %(default)s)")
    parser.add_argument("--top-k", type=int, default=d.top_k,
                        help="labels per frame; use the ingest's value (default %(default)s)")
    parser.add_argument("--min-score", type=float, default=d.min_score,
                        help="minimum label score; use the ingest's value (default %(default)s)")


def similar_command(args: argparse.Namespace) -> int:
    """``vidsage similar``: print the nearest videos of a run's video, or of new ones."""
    if (args.file is None) == (args.video_id is None):
        raise ValueError("give exactly one of FILE (a new video) or --id VIDEO_ID (a video of the run)")
    if args.k < 1:
        raise ValueError(f"-k {args.k}: must be at least 1")
    if args.video_id is not None:
        hits = neighbours_of_known_video(args.run, args.video_id, args.k, args.variant, args.seed)
        meta = Path(args.run) / "data" / "meta.json"
        names = _label_names(load_json(meta).get("num_classes") if meta.is_file() else None)
        print(f"nearest {len(hits)} videos of {args.video_id} in {args.run} ({args.variant}, seed {args.seed}):")
        _print_hits(hits, names)
        return 0
    device = resolve_device(args.device)
    path = Path(args.file)
    if not path.is_file():
        raise FileNotFoundError(f"FILE {path}: no such file")
    art = load_run_artifacts(args.run, args.variant, seed=args.seed)
    if path.suffix == ".tfrecord":
        names = _label_names(art.labels.shape[1] if art.labels is not None else None)
        for vid, edges, hits in similar_for_tfrecords(path, art, args.k, device):
            print(f"{vid}: attached to {edges} training videos; nearest {len(hits)} of {len(art.ids)} "
                  f"in {args.run} ({args.variant}):")
            _print_hits(hits, names)
        return 0
    encoder = FrameEncoder(device)
    tagger = ImageNetTagger(args.top_k, args.min_score, encoder=encoder) if art.object_sets is not None else None
    try:
        vf = process_video(path, encoder, tagger, args.rate, args.max_frames)
    except VideoDecodeError as e:
        raise ValueError(str(e)) from None
    out = embed_new_video(vf, art.embedder(device), path)
    hits = nearest_videos(out["embedding"], art, args.k)
    names = _label_names(art.labels.shape[1] if art.labels is not None else None)
    objects = ", ".join(sorted(vf.objects)) if tagger is not None else "(not used by this variant)"
    print(f"{path.name}: {len(vf.timestamps)} frames at {args.rate:g} fps; objects: {objects or '-'}; "
          f"attached to {out['edges']} training videos")
    print(f"nearest {len(hits)} of {len(art.ids)} videos in {args.run} ({args.variant}):")
    _print_hits(hits, names)
    return 0


def _print_hits(hits: list[dict[str, Any]], names: dict[int, str]) -> None:
    for h in hits:
        labels = ", ".join(names.get(c, str(c)) for c in h["labels"]) or "-"
        print(f"{h['rank']:>3}  {h['cosine']:.3f}  {h['video_id']}  [{labels}]")


# --------------------------------------------------------------------------------------------
# latency (Table 1)
# --------------------------------------------------------------------------------------------
def latency_breakdown(video_path: str | Path, run_dir: str | Path | None = None, rate: float = 1.0,
                      device: str = "auto", repeats: int = 3, variants: Sequence[str] = ("lite", "vidsage"),
                      top_k: int = 3, min_score: float = 0.1, warmup: int = 2) -> dict[str, Any]:
    """Seconds per stage to turn one clip into a representation; medians over ``repeats``.

    Stages: ``decode`` (PyAV + resize/crop of the sampled frames), ``features``
    (EfficientNet-Lite0 on them, logits included), ``objects`` (ImageNet tags from those
    logits: it shares the CNN pass, unlike the paper's separate detector, so it is cheap), and,
    with ``run_dir``, per variant found there: ``attach_<v>`` (kNN + object look-up) and
    ``gnn_<v>`` (the GNN on the new node's subgraph). Set-up is not latency: model loading, the
    run's neighbour index, and ``warmup`` untimed runs (PyTorch's first CPU passes at a new
    shape are several times slower than the steady state).

    Totals: ``total_lite_s`` = decode + features (+ attach/gnn of ``lite``);
    ``total_vidsage_s`` = decode + features + objects (+ attach/gnn of ``vidsage``). Without
    ``run_dir`` (or for a variant missing from it) a total stops before the graph stages;
    ``gnn_timed`` lists the variants whose graph stages were timed.

    Args:
        video_path: the clip (Table 1: 5 s).
        run_dir: a trained run (:func:`load_run_artifacts` layout) or None.
        rate: sampled frames per second.
        device: "auto", "cpu" or "cuda".
        repeats: timed runs; medians are reported.
        variants: run sub-directories to time (missing ones are skipped).
        top_k, min_score: the ImageNet tagger's rule.
        warmup: untimed runs first.

    Returns:
        dict with ``device``, ``torch_threads``, ``cpu_count``, ``load_avg_1min`` (CPU load when
        done), ``clip``, ``duration_s``, ``frames``, ``rate``, ``repeats``, ``<stage>_s``
        medians, ``total_lite_s``, ``total_vidsage_s``, ``gnn_timed`` and ``runs`` (every timed
        run's raw seconds).
    """
    import torch

    if repeats < 1 or warmup < 0:
        raise ValueError(f"need repeats >= 1 and warmup >= 0, got repeats={repeats}, warmup={warmup}")
    path = Path(video_path)
    dev = resolve_device(device)
    encoder = FrameEncoder(dev)
    tagger = ImageNetTagger(top_k, min_score, encoder=encoder)
    embedders = {}
    if run_dir is not None:
        for v in variants:
            try:
                embedders[v] = load_run_artifacts(run_dir, v).embedder(dev)
            except FileNotFoundError:
                continue
        if not embedders:
            raise FileNotFoundError(f"run {run_dir}: none of the variants {list(variants)} has the files {RUN_FILES}")
    # A run trained on other features (e.g. YouTube-8M's 1152-d Inception+audio) cannot place
    # this clip; its graph stages are then timed on the run's own held-out videos instead.
    held_out = {v: e for v, e in embedders.items() if e.x_train.shape[1] not in
                (FEATURE_DIM, FEATURE_DIM + AUDIO_DIM)}
    graph_input = {v: "this clip" for v in embedders}
    runs: list[dict[str, float]] = []
    for i in range(warmup + repeats):
        vf = process_video(path, encoder, tagger, rate, None)
        t = dict(vf.timings)
        for v, emb in embedders.items():
            if v in held_out:
                continue
            out = embed_new_video(vf, emb, path)
            t[f"attach_{v}"], t[f"gnn_{v}"] = out["attach_s"], out["gnn_s"]
        if i >= warmup:
            runs.append(t)
    med = {k: statistics.median(r[k] for r in runs) for k in runs[0]}
    if held_out:
        graph = graph_stage_latency(run_dir, held_out, repeats=max(repeats, 5), warmup=warmup)
        med.update(graph)
        graph_input.update({v: "held-out videos of the run, one at a time (features given)"
                            for v in held_out})
    base = med["decode"] + med["features"]
    totals = {"total_lite_s": base + med.get("attach_lite", 0.0) + med.get("gnn_lite", 0.0),
              "total_vidsage_s": base + med["objects"] + med.get("attach_vidsage", 0.0) + med.get("gnn_vidsage", 0.0)}
    name = dev if not dev.startswith("cuda") else f"{dev} ({torch.cuda.get_device_name(torch.device(dev))})"
    # CPU timings on a shared machine depend on what else runs: keep the load beside them.
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {"device": name, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
            "load_avg_1min": load, "clip": str(path),
            "duration_s": probe_video(path)["duration_s"], "frames": len(vf.timestamps), "rate": rate,
            "repeats": repeats, **{f"{k}_s": v for k, v in med.items()}, **totals,
            "gnn_timed": sorted(embedders), "graph_stage_input": graph_input, "runs": runs}


def graph_stage_latency(run_dir: str | Path, embedders: dict[str, Any], repeats: int = 5,
                        warmup: int = 2) -> dict[str, float]:
    """Median seconds of ``attach_<v>`` and ``gnn_<v>`` for single held-out videos of a run.

    Each timed call embeds ONE test video of the run (batch 1, its real features and object
    set), as a new video would be; video ``i`` of the test split is used for call ``i``.
    """
    from vidsage_core.pipeline import load_run

    view = load_run(run_dir)
    x_test = view.x[view.test]
    out: dict[str, float] = {}
    for v, emb in embedders.items():
        sets = None
        if emb.use_objects:
            all_sets = view.object_sets(v)
            sets = [all_sets[i] for i in view.test]
        attach, gnn = [], []
        for i in range(warmup + repeats):
            j = i % len(x_test)
            t0 = time.perf_counter()
            edges = emb.attachment_edges(x_test[j:j + 1], None if sets is None else [sets[j]])
            t1 = time.perf_counter()
            emb.embed_attached(x_test[j:j + 1], *edges)
            sync_device(emb.device)
            if i >= warmup:
                attach.append(t1 - t0)
                gnn.append(time.perf_counter() - t1)
        out[f"attach_{v}"], out[f"gnn_{v}"] = statistics.median(attach), statistics.median(gnn)
    return out
