"""YouTube-8M scale on one machine: millions of videos, features on disk, bounded RAM.

``python -m benchmarks --only scale --num-videos 4000000`` runs, for ``N`` synthetic videos with
YouTube-8M's shapes (1024 rgb + 128 audio dimensions, labelled *synthetic*):

1. **features** generated in blocks straight into a memory-mapped float16 ``.npy``
   (``np.lib.format.open_memmap``; 4M x 1152 x 2 B = 9.2 GB on disk), rows L2-normalised;
2. **approximate kNN**: by default ``vidsage_core.graph``'s "ivf-gemm" mode (IVF lists from
   FAISS k-means on a sample, then one torch matrix product per inverted list, reading the
   memmap one list at a time: 5.5x faster than FAISS ``IndexIVFFlat`` with the same lists and
   probes at 300k x 1024, same recall); or a FAISS index (IVF with flat or 8-bit
   scalar-quantised lists, or HNSW) trained on a sample and filled block by block from the
   memmap. Either is a :class:`vidsage_core.graph.KnnIndex`, so the search, self-exclusion and
   distance conventions are the graph module's. Recall@k against exact brute force on a sample
   of queries, and the exact full-graph time extrapolated from those queries;
3. **graph**: the LiteVidSage rule (``1 - ||x_u - x_v|| >= tau`` among the ``k`` nearest, union
   symmetrised) through :func:`vidsage_core.graph.build_graph`; never an ``N x N`` matrix;
4. **training**: the paper's recipe (VidSage model, fan-outs 25/10, batch 512, negative-sampling
   loss from ``vidsage_core.train.compute_loss``, AdamW with the trainer's warm-up + cosine
   schedule) with :class:`vidsage_core.sampler.NeighborSampler` over the graph and feature rows
   gathered from the memmap per step (the model skips the rows the seeds do not depend on, using
   the sampler's hop structure). On a CPU only ``steps`` steps run: the report gives the
   median time per step (split into sampling / feature gather / compute) and the one-epoch time
   extrapolated from it (``ceil(N / 512)`` steps), clearly marked *extrapolated*;
5. **embedding** of every video, layer by layer over the whole graph (each layer once per node:
   ``O(E)`` per layer) with block-wise sparse aggregation, intermediate layers in disk-backed
   memmaps.

Peak memory: the process's peak RSS (kernel high-water mark, reset per stage) and the peak
anonymous / file-backed split (polled every 0.5 s; file-backed pages of the memmaps are page
cache the kernel can drop). Target: the whole run within 24 GiB of RAM on a CPU.

Why not ``vidsage_core.train.train`` / ``train.embed`` here: ``train()`` copies the features to one
float32 tensor (18.4 GB at 4M x 1152) and ``embed()`` embeds batches on their exact 3-hop
closure, which at mean degree ~35 is the whole graph per batch; both are right for the
paper-sized runs and are reported to the training helper as scale limits. Negatives here are drawn
from ``deg^0.75`` *without* the non-neighbour re-draw (``losses.sample_negatives`` rebuilds an
``O(E)`` edge-key table per call for that; at N = 4M a random node is a neighbour with probability
~1e-5).

GPU: every tensor stage (training, embedding) runs on CUDA when ``torch.cuda.is_available()``
(``device="auto"``), with bf16 autocast in training; FAISS runs on the GPU when the installed
FAISS has GPU support (the pinned ``faiss-cpu`` does not). The brief's GPU target is one epoch in
<= 5 min on an H100; no GPU was available where these numbers were produced, which the JSON and
the report say.
"""

from __future__ import annotations

import dataclasses
import gc
import math
import shutil
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from benchmarks.report import Row, _reset_peak_rss, _status_kib, device_label, machine_info, malloc_trim, now_iso
from vidsage_core import paths

RGB_DIM, AUDIO_DIM = 1024, 128
GIB = 2**30
TARGET_RAM_GIB = 24.0
TARGET_GPU_EPOCH_S = 300.0
YT8M_SIZE = 4_000_000  # the brief's target size (YouTube-8M 2018: ~6.1M videos in train+validate)


@dataclass(frozen=True)
class ScaleConfig:
    """One scale run. Defaults are the brief's 4M-video case and the paper's training recipe."""

    num_videos: int = YT8M_SIZE
    rgb_dim: int = RGB_DIM  # YouTube-8M mean_rgb
    audio_dim: int = AUDIO_DIM  # YouTube-8M mean_audio
    seed: int = 0
    block: int = 65_536  # rows generated / added / queried per block: bounds every temporary
    # Synthetic model (same family as benchmarks/bench_knn.py's "clustered" data): a Zipf mixture
    # of `num_topics` clusters in a `latent_dim`-D space, lifted to 1152-D, plus isotropic noise.
    num_topics: int = 1000
    latent_dim: int = 64
    centre_scale: float = 2.0
    noise: float = 0.35
    # Graph: the LiteVidSage rule with the graph module's defaults (tau None = graph.DEFAULT_TAU).
    k: int = 25
    tau: float | None = None
    # Index: "auto" = "ivf-gemm" (vidsage_core.graph's IVF-as-GEMM mode: no copy of the data, and
    # faster than FAISS IVF with the same lists); the FAISS kinds: "ivf" (flat lists), "ivf-sq8"
    # (8-bit scalar-quantised lists, 4x smaller: 4.6 GB at 4M) or "hnsw".
    index: str = "auto"
    # IVF cells; None = sqrt(N) for ivf-gemm (graph default), 2 * sqrt(N) for the FAISS kinds
    # (k-means cost in 1152-D bounds it).
    nlist: int | None = None
    nprobe: int | None = None  # cells probed per query; None = 4 for ivf-gemm, 16 for FAISS
    train_points_per_list: int = 40  # k-means sample = nlist * this (FAISS wants >= 39)
    kmeans_iters: int = 10
    hnsw_m: int = 32
    ef_search: int = 128
    ef_construction: int = 80
    recall_sample: int = 500  # queries checked against exact brute force
    # Training (paper §3.4 and TrainConfig defaults).
    train_steps: int = 5  # timed steps (a CPU cannot run an epoch of 7,813 steps; minutes each at 4M)
    warmup_steps: int = 1  # untimed first step (allocations, lazy initialisation)
    batch_size: int = 512
    fanouts: tuple[int, ...] = (25, 10)
    hidden_dim: int = 256
    out_dim: int = 256
    lr: float = 1e-3
    weight_decay: float = 1e-4
    num_negatives: int = 5
    temperature: float = 0.1
    embed: bool = True
    embed_block: int = 32_768
    device: str = "auto"
    ram_budget_gib: float = TARGET_RAM_GIB
    work_dir: str | None = None  # default results/cache/scale-<N> (git-ignored)
    keep_work: bool = False  # keep the features / embeddings memmaps afterwards


# ---------------------------------------------------------------------------------------------
# memory monitoring
# ---------------------------------------------------------------------------------------------
class StageMemory:
    """Per-stage peak RSS (kernel VmHWM, reset at each stage) plus polled anon/file peaks."""

    def __init__(self, poll_s: float = 0.5) -> None:
        self.poll_s = poll_s
        self.stages: dict[str, dict[str, float]] = {}
        self._cur: str | None = None
        self._peak_anon = 0
        self._peak_file = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)
        self._thread.start()

    def _poll(self) -> None:
        while not self._stop.is_set():
            a = (_status_kib("RssAnon") or 0) * 1024
            f = (_status_kib("RssFile") or 0) * 1024 + (_status_kib("RssShmem") or 0) * 1024
            self._peak_anon = max(self._peak_anon, a)
            self._peak_file = max(self._peak_file, f)
            time.sleep(self.poll_s)

    def start(self, name: str) -> None:
        gc.collect()
        malloc_trim()
        self._cur = name
        self._kernel = _reset_peak_rss()
        self._peak_anon = (_status_kib("RssAnon") or 0) * 1024
        self._peak_file = (_status_kib("RssFile") or 0) * 1024
        self._t0 = time.perf_counter()

    def stop(self) -> dict[str, float]:
        hwm = (_status_kib("VmHWM") or 0) * 1024 if self._kernel else 0
        rss = (_status_kib("VmRSS") or 0) * 1024
        # Without the kernel high-water mark the polled anon + file peaks bound it from below.
        polled = 0 if self._kernel else self._peak_anon + self._peak_file
        out = {"seconds": time.perf_counter() - self._t0,
               "peak_rss_gib": max(hwm, rss, polled) / GIB,
               "peak_anon_gib": self._peak_anon / GIB, "peak_file_gib": self._peak_file / GIB}
        self.stages[self._cur or "?"] = out
        self._cur = None
        return out

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)

    def peak(self) -> dict[str, float]:
        return {k: max((s[k] for s in self.stages.values()), default=0.0)
                for k in ("peak_rss_gib", "peak_anon_gib", "peak_file_gib")}


# ---------------------------------------------------------------------------------------------
# 1. features
# ---------------------------------------------------------------------------------------------
def write_synthetic_features(path: str | Path, config: ScaleConfig, progress: bool = False) -> np.memmap:
    """Generate ``[N, 1152]`` synthetic video features block by block into a float16 ``.npy``.

    Row ``i``: topic ``c ~ Zipf``, latent ``z = centre[c] + N(0, I_latent)``,
    ``x = z @ P + noise * N(0, I_1152)`` (``P`` a fixed random ``latent x 1152`` lift,
    ``1 / sqrt(latent)`` scaled; columns 0-1023 are the "rgb" and 1024-1151 the "audio" part,
    driven by the same topic), then L2-normalised. Block ``b`` uses its own stream
    ``default_rng([seed, 1, b])``, so the data depends only on the config, not on block timing.

    Args:
        path: output ``.npy`` (created, or overwritten).
        config: sizes, seed and the model's knobs.
        progress: tqdm bar over blocks.

    Returns:
        The float16 memmap ``[N, 1152]`` (mode ``r+``).
    """
    from tqdm.auto import tqdm

    n, d = config.num_videos, config.rgb_dim + config.audio_dim
    g = np.random.default_rng([config.seed, 0])
    w = 1.0 / np.arange(1, config.num_topics + 1) ** 0.5
    topic_cdf = np.cumsum(g.permutation(w / w.sum()))
    topic_cdf[-1] = 1.0
    centres = (g.standard_normal((config.num_topics, config.latent_dim)) * config.centre_scale).astype(np.float32)
    lift = (g.standard_normal((config.latent_dim, d)) / math.sqrt(config.latent_dim)).astype(np.float32)
    out = np.lib.format.open_memmap(Path(path), mode="w+", dtype=np.float16, shape=(n, d))
    for b, s in enumerate(tqdm(range(0, n, config.block), desc="features", unit="block", disable=not progress)):
        e = min(n, s + config.block)
        r = np.random.default_rng([config.seed, 1, b])
        topic = np.searchsorted(topic_cdf, r.random(e - s), "right")
        z = centres[topic] + r.standard_normal((e - s, config.latent_dim), dtype=np.float32)
        x = z @ lift
        x += config.noise * r.standard_normal((e - s, d), dtype=np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        out[s:e] = x.astype(np.float16)
    out.flush()
    return out


def _rows(feats: np.ndarray, rows: slice | np.ndarray) -> np.ndarray:
    """float32 copy of some rows of ``feats`` (a float16 memmap is read only there)."""
    return np.ascontiguousarray(feats[rows], dtype=np.float32)


# ---------------------------------------------------------------------------------------------
# 2. approximate kNN index over the memmap
# ---------------------------------------------------------------------------------------------
def resolve_index_kind(config: ScaleConfig) -> str:
    """The index actually used for ``config.index == "auto"`` (ivf-gemm)."""
    if config.index != "auto":
        if config.index not in ("ivf-gemm", "ivf", "ivf-sq8", "hnsw"):
            raise ValueError("ScaleConfig.index must be auto, ivf-gemm, ivf, ivf-sq8 or hnsw, "
                             f"got {config.index!r}")
        return config.index
    return "ivf-gemm"


def build_index_blocked(feats: np.ndarray, config: ScaleConfig, progress: bool = False):
    """Train (IVF: on a sample) and fill a FAISS index block by block from ``feats``; or, for
    "ivf-gemm", train the lists and assign every row to them (the search is
    :func:`knn_edges_blocked`).

    Args:
        feats: ``[N, D]`` unit rows (float16 memmap is fine).
        config: index kind and parameters.
        progress: tqdm over the add blocks.

    Returns:
        :class:`vidsage_core.graph.KnnIndex` (inner-product metric on unit vectors; its
        ``search`` returns Euclidean distances, like the graph module's own indexes).
    """
    import faiss
    from tqdm.auto import tqdm

    from vidsage_core.graph import KnnIndex

    kind = resolve_index_kind(config)
    n, d = feats.shape
    if kind == "ivf-gemm":
        from vidsage_core.graph import build_index

        index = build_index(feats, mode="ivf-gemm", device=config.device, metric="ip", nlist=config.nlist,
                            nprobe=config.nprobe, seed=config.seed, kmeans_iters=config.kmeans_iters,
                            train_size=config.nlist * config.train_points_per_list if config.nlist else None)
        index.params.update(kind=kind, train_seconds=round(index.index.train_seconds, 3),
                            assign_seconds=round(index.index.assign_seconds, 3))
        return index
    t0 = time.perf_counter()
    params: dict[str, Any] = {"metric": "ip", "kind": kind}
    if kind in ("ivf", "ivf-sq8"):
        nlist = config.nlist or int(round(2 * math.sqrt(n)))
        nlist = max(1, min(nlist, n // 39 if n >= 39 else 1))
        quantizer = faiss.IndexFlatIP(d)
        if kind == "ivf":
            index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
        else:
            index = faiss.IndexIVFScalarQuantizer(quantizer, d, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                  faiss.METRIC_INNER_PRODUCT)
        index.cp.seed = config.seed
        index.cp.niter = config.kmeans_iters
        ts = min(n, nlist * config.train_points_per_list)
        rng = np.random.default_rng([config.seed, 2])
        sample = np.ascontiguousarray(feats[np.sort(rng.choice(n, ts, replace=False))], dtype=np.float32)
        index.train(sample)
        del sample
        index.nprobe = int(min(config.nprobe or 16, nlist))
        params.update(nlist=nlist, nprobe=int(index.nprobe), train_size=int(ts), kmeans_iters=config.kmeans_iters)
    else:
        index = faiss.IndexHNSWFlat(d, config.hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = config.ef_construction
        index.hnsw.efSearch = config.ef_search
        params.update(M=config.hnsw_m, efSearch=config.ef_search, efConstruction=config.ef_construction)
    train_s = time.perf_counter() - t0
    backend = "faiss-cpu"
    if torch.cuda.is_available() and kind != "hnsw" and hasattr(faiss, "StandardGpuResources") \
            and faiss.get_num_gpus() > 0:
        index = faiss.index_cpu_to_gpu(faiss.StandardGpuResources(), 0, index)
        backend = "faiss-gpu"
    for s in tqdm(range(0, n, config.block), desc=f"index[{kind}] add", unit="block", disable=not progress):
        index.add(_rows(feats, slice(s, s + config.block)))
    params["train_seconds"] = round(train_s, 3)
    return KnnIndex(index, kind, True, n, d, params, backend, time.perf_counter() - t0)


def knn_edges_blocked(feats: np.ndarray, index, k: int, tau: float, block: int,
                      progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Directed LiteVidSage candidates ``(u, v)``: v among u's k nearest (self excluded) and
    ``1 - ||x_u - x_v|| >= tau``; queries in blocks.

    Returns:
        rows, cols: int32 ``[M]`` (M <= N * k).
    """
    from tqdm.auto import tqdm

    from vidsage_core.graph import knn

    n = feats.shape[0]
    rows = np.empty(n * k, np.int32)
    cols = np.empty(n * k, np.int32)
    m = 0
    # ivf-gemm searches all rows in one pass (grouped by list; O(N * k) result), FAISS in blocks.
    full = knn(feats, k, index=index, progress=progress) if index.mode == "ivf-gemm" else None
    for s in tqdm(range(0, n, block), desc="knn search", unit="block", disable=not progress or full is not None):
        e = min(n, s + block)
        if full is None:
            dist, idx = index.search(_rows(feats, slice(s, e)), k, exclude=np.arange(s, e), batch_size=block)
        else:
            dist, idx = full[0][s:e], full[1][s:e]
        keep = (idx >= 0) & (1.0 - dist >= tau)
        c = idx[keep]
        rows[m:m + c.size] = np.repeat(np.arange(s, e, dtype=np.int32), k)[keep.ravel()]
        cols[m:m + c.size] = c
        m += c.size
    return rows[:m], cols[:m]


def exact_knn_rows(feats: np.ndarray, query_rows: np.ndarray, k: int, block: int) -> np.ndarray:
    """Exact top-``k`` inner-product neighbours (self excluded) of ``query_rows`` by brute force.

    Returns:
        int64 ``[R, k]`` neighbour ids, most similar first.
    """
    q = np.ascontiguousarray(feats[query_rows], dtype=np.float32)
    r = len(query_rows)
    best_s = np.full((r, k), -np.inf, np.float32)
    best_i = np.full((r, k), -1, np.int64)
    n = feats.shape[0]
    for s in range(0, n, block):
        e = min(n, s + block)
        sims = q @ _rows(feats, slice(s, e)).T
        inside = (query_rows >= s) & (query_rows < e)
        sims[np.flatnonzero(inside), query_rows[inside] - s] = -np.inf
        cand_s = np.concatenate([best_s, sims], axis=1)
        cand_i = np.concatenate([best_i, np.broadcast_to(np.arange(s, e), sims.shape)], axis=1)
        top = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
        best_s = np.take_along_axis(cand_s, top, 1)
        best_i = np.take_along_axis(cand_i, top, 1)
    order = np.argsort(-best_s, axis=1, kind="stable")
    return np.take_along_axis(best_i, order, 1)


# ---------------------------------------------------------------------------------------------
# 4. training over the memmap
# ---------------------------------------------------------------------------------------------
def gather_rows(feats: np.ndarray, ids: torch.Tensor, device: str) -> torch.Tensor:
    """float32 ``[len(ids), D]`` rows of ``feats`` on ``device`` (sorted reads from the memmap)."""
    idx = ids.cpu().numpy()
    order = np.argsort(idx, kind="stable")
    block = np.empty((len(idx), feats.shape[1]), dtype=feats.dtype)
    block[order] = feats[idx[order]]
    t = torch.from_numpy(block)
    if device.startswith("cuda"):
        return t.to(device, non_blocking=True).float()  # ship float16, widen on the GPU
    return t.float()


def train_on_memmap(feats: np.ndarray, graph, config: ScaleConfig, device: str,
                    progress: bool = False) -> dict[str, Any]:
    """``warmup_steps + train_steps`` training steps of the paper's recipe over the memmap.

    Returns:
        dict: per-step medians (``step_s``, ``sample_s``, ``gather_s``, ``compute_s``), subgraph
        sizes, losses, ``steps_per_epoch`` and the extrapolated epoch time.
    """
    from tqdm.auto import tqdm

    from vidsage_core.losses import sample_negatives, sample_positives
    from vidsage_core.model import build_model
    from vidsage_core.sampler import NeighborSampler
    from vidsage_core.train import TrainConfig, compute_loss, lr_factor

    n = graph.num_nodes
    tc = TrainConfig(model="vidsage", hidden_dim=config.hidden_dim, out_dim=config.out_dim,
                     batch_size=config.batch_size, fanouts=tuple(config.fanouts), lr=config.lr,
                     weight_decay=config.weight_decay, num_negatives=config.num_negatives,
                     temperature=config.temperature, seed=config.seed, device=device)
    torch.manual_seed(config.seed)
    model = build_model("vidsage", feats.shape[1], tc.hidden_dim, tc.out_dim, dropout=tc.dropout).to(device)
    opt = torch.optim.AdamW(model.parameters(), lr=tc.lr, weight_decay=tc.weight_decay)
    steps_per_epoch = math.ceil(n / tc.batch_size)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, tc.warmup_steps, steps_per_epoch))
    use_amp = device.startswith("cuda")
    amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
    sampler = NeighborSampler(graph, fanouts=tc.fanouts, seed=config.seed)
    rowptr, col, _ = graph.csr()
    gen = torch.Generator().manual_seed(config.seed)
    perm = torch.randperm(n, generator=gen)
    b, q = tc.batch_size, tc.num_negatives
    rec: dict[str, list[float]] = {k: [] for k in ("step_s", "sample_s", "gather_s", "compute_s", "loss",
                                                   "subgraph_nodes", "subgraph_edges", "seeds")}
    model.train()
    total = config.warmup_steps + config.train_steps
    for step in tqdm(range(total), desc="train", disable=not progress):
        t0 = time.perf_counter()
        anchors = perm[(step * b + torch.arange(b)) % n]
        pos, pos_ok = sample_positives(rowptr, col, anchors, 1, gen)
        neg, neg_ok = sample_negatives(n, (b, q), gen, rowptr, col, None, "degree")
        seeds, inv = torch.unique(torch.cat([anchors, pos, neg.reshape(-1)]), return_inverse=True)
        sub = sampler.sample(seeds)
        t1 = time.perf_counter()
        x_sub = gather_rows(feats, sub.n_id, device)
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t2 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
            # The hop structure lets the model skip rows the seeds do not depend on (same seed outputs).
            z = model(x_sub, sub.edge_index.to(device), sub.edge_weight.float().to(device),
                      num_sampled_nodes_per_hop=sub.num_sampled_nodes,
                      num_sampled_edges_per_hop=sub.num_sampled_edges)[: sub.batch_size]
            z = z.float()
            inv_d = inv.to(device)
            loss = compute_loss(tc, z[inv_d[:b]], z[inv_d[b:2 * b]], z[inv_d[2 * b:]].reshape(b, q, -1),
                                pos_ok.to(device), neg_ok.to(device))
        loss.backward()
        opt.step()
        sched.step()
        loss_value = float(loss.detach())  # synchronises on CUDA
        t3 = time.perf_counter()
        if step >= config.warmup_steps:
            rec["step_s"].append(t3 - t0)
            rec["sample_s"].append(t1 - t0)
            rec["gather_s"].append(t2 - t1)
            rec["compute_s"].append(t3 - t2)
        rec["loss"].append(loss_value)
        rec["subgraph_nodes"].append(float(sub.num_nodes))
        rec["subgraph_edges"].append(float(sub.edge_index.shape[1]))
        rec["seeds"].append(float(seeds.numel()))
        del x_sub, z, loss, sub
    med = {k: float(np.median(v)) if v else float("nan") for k, v in rec.items()
           if k not in ("loss",)}
    out = {
        "steps_run": total, "steps_timed": config.train_steps, "warmup_steps": config.warmup_steps,
        "steps_per_epoch": steps_per_epoch, "batch_size": b, "fanouts": list(tc.fanouts),
        "median": med, "loss_first": rec["loss"][0] if rec["loss"] else None,
        "loss_last": rec["loss"][-1] if rec["loss"] else None,
        "epoch_s_extrapolated": steps_per_epoch * med["step_s"],
        "seed_nodes_per_s": b / med["step_s"] if med["step_s"] > 0 else None,
        "negatives": "deg^0.75, no non-neighbour re-draw (see module docstring)",
        "model": {"name": "vidsage", "in_dim": int(feats.shape[1]), "hidden_dim": tc.hidden_dim,
                  "out_dim": tc.out_dim},
    }
    out["_model"] = model
    return out


# ---------------------------------------------------------------------------------------------
# 5. layer-wise embedding of every node
# ---------------------------------------------------------------------------------------------
@torch.no_grad()
def layerwise_embed(model, feats: np.ndarray, graph, out_path: str | Path | None = None, block: int = 32_768,
                    device: str = "cpu", work_dir: str | Path | None = None, progress: bool = False) -> np.ndarray:
    """Eval-mode embeddings of every node of ``graph``, one layer at a time over the whole graph.

    Equal (to float rounding) to ``model(x, graph.edge_index, graph.edge_weight)`` in eval mode, but
    each layer costs ``O(N d^2 + E d)`` once instead of once per batch, and memory is bounded by
    the block size: ``h`` and the messages of a layer live in float32 memmaps in ``work_dir``
    (RAM when ``work_dir`` is None). Implements the VidSage encoder (``vidsage_core.model.VidSage``:
    optional input projection, then ``VidSageConv`` per layer: ``ReLU(W2 [h_i || sum_j w_ij
    ReLU(W1 h_j)])``, L2 norm); the graph must be symmetric (a ``VideoGraph``), so its CSR by
    source row is also its in-neighbour list.

    Args:
        model: a ``VidSage`` encoder.
        feats: ``[N, in_dim]`` features (float16 memmap is fine).
        graph: ``VideoGraph`` with N nodes.
        out_path: ``.npy`` for the float16 ``[N, out_dim]`` result (None: an in-memory float32 array).
        block: rows per block.
        device: where the dense and sparse products run.
        work_dir: where intermediate layers are memory-mapped.
        progress: tqdm bars.

    Returns:
        ``[N, out_dim]`` embeddings (float16 memmap when ``out_path`` is given, else float32).
    """
    from tqdm.auto import tqdm

    from vidsage_core.model import VidSage

    if not isinstance(model, VidSage):
        raise TypeError(f"layerwise_embed implements the VidSage encoder, got {type(model).__name__}")
    was_training = model.training
    model.eval()
    model.to(device)
    n = graph.num_nodes
    rowptr, col, weight = graph.csr()
    tmp_files: list[Path] = []

    def buffer(name: str, width: int) -> np.ndarray:
        if work_dir is None:
            return np.empty((n, width), np.float32)
        p = Path(work_dir) / f"_layer_{name}.npy"
        tmp_files.append(p)
        return np.lib.format.open_memmap(p, mode="w+", dtype=np.float32, shape=(n, width))

    def blocks(desc: str):
        return tqdm(range(0, n, block), desc=desc, unit="block", disable=not progress)

    def dense(a: np.ndarray, s: int, e: int) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a[s:e], dtype=np.float32)).to(device)

    try:
        layers = model.layers()
        width = model.proj.out_features if model.proj is not None else feats.shape[1]
        h = feats
        if model.proj is not None:
            h = buffer("h0", width)
            for s in blocks("embed: projection"):
                e = min(n, s + block)
                h[s:e] = model.proj(dense(feats, s, e)).cpu().numpy()
        for t, conv in enumerate(layers):
            act = model.layer_activation(t)
            d_in = conv.lin1.in_features
            msg = buffer(f"msg{t}", d_in)
            for s in blocks(f"embed: layer {t + 1} messages"):
                e = min(n, s + block)
                msg[s:e] = conv.messages(dense(h, s, e)).cpu().numpy()  # eval: no dropout
            msg_t = torch.from_numpy(msg) if device == "cpu" else torch.from_numpy(np.asarray(msg)).to(device)
            last = t == len(layers) - 1
            if last and out_path is not None:
                nxt = np.lib.format.open_memmap(Path(out_path), mode="w+", dtype=np.float16,
                                                shape=(n, conv.out_channels))
            else:
                nxt = buffer(f"h{t + 1}", conv.out_channels) if not last else np.empty((n, conv.out_channels),
                                                                                       np.float32)
            for s in blocks(f"embed: layer {t + 1} aggregate"):
                e = min(n, s + block)
                lo, hi = int(rowptr[s]), int(rowptr[e])
                with warnings.catch_warnings():
                    # torch flags sparse CSR as "beta"; the one operation used here (CSR @ dense) is stable.
                    warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta state")
                    a = torch.sparse_csr_tensor((rowptr[s:e + 1] - lo), col[lo:hi], weight[lo:hi].float(),
                                                size=(e - s, n), check_invariants=False).to(device)
                out = conv.combine(dense(h, s, e), a @ msg_t, act=act)
                nxt[s:e] = out.cpu().numpy().astype(nxt.dtype, copy=False)
            del msg_t, msg
            h = nxt
        if isinstance(h, np.memmap):
            h.flush()
        return h
    finally:
        model.train(was_training)
        for p in tmp_files:
            try:
                p.unlink()
            except OSError:
                pass


# ---------------------------------------------------------------------------------------------
# the run
# ---------------------------------------------------------------------------------------------
def default_work_dir(num_videos: int) -> Path:
    return paths.RESULTS / "cache" / f"scale-{num_videos}"


def result_path(num_videos: int) -> Path:
    return paths.RESULTS / "scale" / f"scale-{num_videos}.json"


def run_scale(config: ScaleConfig = ScaleConfig(), progress: bool = True, out_json: str | Path | None = None,
              log: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Run every stage and write ``results/scale/scale-<N>.json`` (see the module docstring).

    Args:
        config: the run.
        progress: tqdm bars.
        out_json: where to write the result (default ``result_path(N)``; None writes there too).
        log: line logger (default: print, flushed).

    Returns:
        The result dict written to ``out_json``.
    """
    from vidsage_core.graph import DEFAULT_TAU, build_graph
    from vidsage_core.utils import resolve_device, save_json

    log = log or (lambda s: print(s, flush=True))
    device = resolve_device(config.device)
    n = config.num_videos
    tau = DEFAULT_TAU if config.tau is None else config.tau
    work = Path(config.work_dir) if config.work_dir else default_work_dir(n)
    work.mkdir(parents=True, exist_ok=True)
    out_json = Path(out_json) if out_json else result_path(n)
    mem = StageMemory()
    result: dict[str, Any] = {
        "created": now_iso(), "synthetic": True,
        "data": (f"synthetic: {n:,} videos with {config.rgb_dim} rgb + {config.audio_dim} audio dimensions "
                 f"(YouTube-8M 2018: 1024 + 128), Zipf mixture of "
                 f"{config.num_topics} topics in a {config.latent_dim}-D latent space + isotropic noise, "
                 "L2-normalised, float16 memmap"),
        "config": {**dataclasses.asdict(config), "tau_resolved": tau, "index_resolved": resolve_index_kind(config)},
        "device": device_label(device), "gpu_available": torch.cuda.is_available(),
        "machine": machine_info(), "stages": {}, "status": "running",
    }
    if not torch.cuda.is_available():
        result["gpu_note"] = ("no GPU on this machine: every stage ran on the CPU; the H100 target (one epoch "
                              "<= 5 min) is not measured here")

    def stage(name: str) -> None:
        log(f"[scale N={n:,}] {name} ...")
        mem.start(name)

    def done(name: str, **info: Any) -> dict:
        m = mem.stop()
        result["stages"][name] = {**m, **info}
        log(f"[scale N={n:,}] {name}: {m['seconds']:.1f} s, peak RSS {m['peak_rss_gib']:.2f} GiB "
            f"(anon {m['peak_anon_gib']:.2f}, file {m['peak_file_gib']:.2f}) {info if info else ''}")
        save_json(_public(result), out_json)
        return m

    try:
        stage("features")
        feats_path = work / "features.npy"
        feats = write_synthetic_features(feats_path, config, progress)
        done("features", path=str(feats_path), gib_on_disk=feats_path.stat().st_size / GIB, dtype="float16",
             shape=list(feats.shape))
        del feats
        feats = np.load(feats_path, mmap_mode="r")

        stage("knn_index")
        index = build_index_blocked(feats, config, progress)
        done("knn_index", kind=index.mode, params=index.params, backend=index.backend)

        stage("knn_search")
        rows, cols = knn_edges_blocked(feats, index, config.k, tau, config.block, progress)
        done("knn_search", directed_candidates=int(rows.size))

        stage("knn_recall")
        rng = np.random.default_rng([config.seed, 3])
        qr = np.sort(rng.choice(n, min(config.recall_sample, n), replace=False))
        t0 = time.perf_counter()
        _, approx = index.search(_rows(feats, qr), config.k, exclude=qr)
        t_approx = time.perf_counter() - t0
        t0 = time.perf_counter()
        exact = exact_knn_rows(feats, qr, config.k, config.block)
        t_exact = time.perf_counter() - t0
        recall = float(np.mean([len(np.intersect1d(a[a >= 0], e)) for a, e in zip(approx, exact)]) / config.k)
        search_s = result["stages"]["knn_search"]["seconds"]
        build_s = result["stages"]["knn_index"]["seconds"]
        exact_full = t_exact * n / len(qr)
        done("knn_recall", recall_at_k=recall, k=config.k, sample=int(len(qr)),
             exact_seconds_sample=t_exact, approx_seconds_sample=t_approx,
             exact_full_graph_seconds_extrapolated=exact_full,
             speedup_vs_exact_extrapolated=exact_full / (search_s + build_s),
             exact_method="numpy float32 brute force over the memmap in blocks (self excluded)")
        del index
        gc.collect()

        stage("graph")
        graph = build_graph(rows, cols, 1.0, n,
                            {"kind": "lite", "k": config.k, "tau": tau, "mode": result["config"]["index_resolved"],
                             "symmetrize": "union", "synthetic": True, "weight": "w2 = 1"},
                            symmetrize=True, reduce="max")
        del rows, cols
        deg = graph.degree()
        done("graph", num_edges_undirected=graph.num_undirected_edges, degree_mean=float(deg.float().mean()),
             degree_max=int(deg.max()), isolated=int((deg == 0).sum()))
        del deg

        stage("train")
        tr = train_on_memmap(feats, graph, config, device, progress)
        model = tr.pop("_model")
        done("train", **tr)

        if config.embed:
            stage("embed")
            t0 = time.perf_counter()
            z = layerwise_embed(model, feats, graph, work / "embeddings.npy", config.embed_block, device, work,
                                progress)
            embed_s = time.perf_counter() - t0
            norms = np.linalg.norm(np.asarray(z[: min(n, 10_000)], dtype=np.float32), axis=1)
            done("embed", shape=list(z.shape), dtype=str(z.dtype), videos_per_s=n / max(1e-9, embed_s),
                 unit_norm_fraction=float(np.mean(np.abs(norms - 1) < 1e-2)))
            del z
        result["status"] = "ok"
        if n < YT8M_SIZE:
            result["extrapolated_to_4M"] = extrapolate(result, YT8M_SIZE)
    except BaseException as exc:  # record what happened, then re-raise
        result["status"] = f"failed: {type(exc).__name__}: {exc}"
        raise
    finally:
        mem.close()
        result["peak"] = mem.peak()
        result["total_seconds"] = sum(s["seconds"] for s in result["stages"].values())
        result["within_ram_target"] = result["peak"]["peak_rss_gib"] <= TARGET_RAM_GIB
        result["finished"] = now_iso()
        save_json(_public(result), out_json)
        if not config.keep_work:
            shutil.rmtree(work, ignore_errors=True)
    log(f"[scale N={n:,}] done in {result['total_seconds']:.0f} s; peak RSS {result['peak']['peak_rss_gib']:.2f} GiB; "
        f"wrote {out_json}")
    return result


def expected_subgraph_nodes(num_nodes: int, seeds: float, fanouts: tuple[int, ...] | list[int]) -> float:
    """Expected distinct nodes of a fan-out neighbour sample, modelling draws as uniform over nodes.

    Hop ``h`` draws ``frontier * fanout`` nodes; the new ones are the draws that land outside the
    current set: ``(N - total) * (1 - exp(-draws / N))``. A crude model (real graphs are not
    uniform), used only to scale a measured step time to another ``N``.
    """
    total = frontier = float(seeds)
    for f in fanouts:
        new = (num_nodes - total) * (1.0 - math.exp(-frontier * f / num_nodes))
        total += new
        frontier = new
    return total


def extrapolate(result: dict[str, Any], target_n: int = YT8M_SIZE) -> dict[str, Any]:
    """Scale a measured run to ``target_n`` videos. EXTRAPOLATION, not measurement.

    Assumptions (stated in the output): features, graph building and embedding scale with N; the
    IVF k-means sample grows with nlist ~ sqrt(N) so k-means scales with N; IVF add and search
    scale with N^1.5 (each vector meets ~nprobe * N / nlist ~ sqrt(N) others); one training step
    scales with the expected sampled-subgraph size (:func:`expected_subgraph_nodes`) and an epoch
    has ``ceil(N / batch)`` steps. Memory: an analytic estimate of the largest anonymous (non
    page-cache) footprint, from the array sizes involved.
    """
    st = result["stages"]
    cfg = result["config"]
    n = int(cfg["num_videos"])
    r = target_n / n
    out: dict[str, Any] = {"target_videos": target_n, "from_videos": n, "EXTRAPOLATED": True,
                           "assumptions": extrapolate.__doc__.split("Assumptions (stated in the output): ")[1]
                           .split("\n\n")[0].replace("\n    ", " ").replace(":func:", "").replace("``", "")
                           .replace("`", "").strip()}
    sec: dict[str, float] = {}
    if "features" in st:
        sec["features"] = st["features"]["seconds"] * r
    if "knn_index" in st:
        train_s = float(st["knn_index"].get("params", {}).get("train_seconds", 0.0))
        sec["knn_index"] = train_s * r + (st["knn_index"]["seconds"] - train_s) * r**1.5
    if "knn_search" in st:
        sec["knn_search"] = st["knn_search"]["seconds"] * r**1.5
    if "graph" in st:
        sec["graph"] = st["graph"]["seconds"] * r
    if "embed" in st:
        sec["embed"] = st["embed"]["seconds"] * r
    if "train" in st:
        tr = st["train"]
        med = tr["median"]
        grow = (expected_subgraph_nodes(target_n, med["seeds"], tr["fanouts"])
                / max(1.0, med["subgraph_nodes"]))
        step = med["step_s"] * grow
        out["train_step_s"] = step
        out["train_subgraph_nodes_expected"] = expected_subgraph_nodes(target_n, med["seeds"], tr["fanouts"])
        out["train_epoch_s"] = math.ceil(target_n / tr["batch_size"]) * step
        sec["train_one_epoch"] = out["train_epoch_s"]
    out["stage_seconds"] = sec
    out["total_seconds"] = sum(sec.values())
    d = cfg.get("rgb_dim", RGB_DIM) + cfg.get("audio_dim", AUDIO_DIM)
    k = int(cfg["k"])
    kind = cfg.get("index_resolved")
    if kind != "ivf-gemm":
        kind = "ivf-sq8" if target_n * d * 4 > cfg.get("ram_budget_gib", TARGET_RAM_GIB) * GIB / 3 else "ivf"
    deg = st.get("graph", {}).get("degree_mean", 2.0 * k)
    e_dir = deg * target_n
    sub = out.get("train_subgraph_nodes_expected", 0.0)
    hidden = int(cfg.get("hidden_dim", 256))
    gib = {
        "features_memmap_file_backed": target_n * d * 2 / GIB,
        "knn_index": target_n * (d * (1 if kind == "ivf-sq8" else 4) + 8) / GIB,
        "knn_candidates": target_n * k * 8 / GIB,
        # build_graph: int64 rows/cols of both directions, keys, unique's sort and inverse, weights
        "graph_build_temporaries": e_dir * 44 / GIB,
        "graph_tensors": e_dir * 20 / GIB,
        # one step: gathered rows (float16 + float32), then ~8 hidden-width activations per node
        "train_step": sub * (d * 6 + hidden * 4 * 8) / GIB,
        "embed_blocks": (cfg.get("embed_block", 32768) * (d + 4 * hidden) * 4) / GIB,
    }
    if kind == "ivf-gemm":
        # No copy of the data: probe lists (int32), norms and list members per row; the search
        # holds the running top-k, the returned dist/idx and the int32 candidates (N * k each).
        nprobe = int(st.get("knn_index", {}).get("params", {}).get("nprobe") or 4)
        gib["knn_index"] = target_n * (4 * nprobe + 12) / GIB
        gib["knn_candidates"] = target_n * k * (12 + 12 + 8) / GIB
    gib["anon_peak_estimate"] = 1.0 + max(gib["knn_index"] + gib["knn_candidates"],
                                          gib["graph_build_temporaries"],
                                          gib["graph_tensors"] + gib["train_step"],
                                          gib["graph_tensors"] + gib["embed_blocks"])
    out["index_kind"] = kind
    out["memory_gib_estimate"] = gib
    return out


def _public(result: dict) -> dict:
    return {k: v for k, v in result.items() if not k.startswith("_")}


# ---------------------------------------------------------------------------------------------
# report rows
# ---------------------------------------------------------------------------------------------
def scale_rows(result: dict[str, Any], source: str = "") -> list[Row]:
    """Report rows from a scale result dict (``run_scale``'s return value or its JSON).

    Values are measured at the run's own size; the ``*_at_4M`` extras (and the notes saying so) are
    EXTRAPOLATED with :func:`extrapolate` when the run was smaller than 4M.
    """
    st = result.get("stages", {})
    c = result["config"]
    n = int(c["num_videos"])
    dev = result.get("device", "cpu")
    size = (f"{n:,} videos (synthetic, {c.get('rgb_dim', RGB_DIM)}+{c.get('audio_dim', AUDIO_DIM)}-d"
            f"{', YT-8M shapes' if c.get('rgb_dim', RGB_DIM) == RGB_DIM else ''}), float16 memmap")
    src = f" Source: {source}." if source else ""
    ex = result.get("extrapolated_to_4M") or (extrapolate(result) if n < YT8M_SIZE and
                                                result.get("status") == "ok" else None)
    ex_note = (f" Values at 4M are EXTRAPOLATED from this {n:,}-video run ({ex['assumptions']})" if ex else "")
    measured_at = result.get("finished") or result.get("created") or ""
    common = dict(group="scale", size=size, device=dev, measured_at=measured_at,
                  mem_method="peak RSS of the whole process during the stage (kernel VmHWM)")
    rows: list[Row] = []
    peak = result.get("peak", {})
    extra = {"peak_anon_gib": peak.get("peak_anon_gib"), "peak_file_backed_gib": peak.get("peak_file_gib"),
             "stage_seconds": {name: round(v["seconds"], 1) for name, v in st.items()},
             "total_seconds": result.get("total_seconds")}
    if ex:
        extra["anon_peak_gib_at_4M_estimate"] = ex["memory_gib_estimate"]["anon_peak_estimate"]
        extra["stage_seconds_at_4M_extrapolated"] = {k: round(v) for k, v in ex["stage_seconds"].items()}
    rows.append(Row(name="whole pipeline peak RAM (generate, index, kNN, graph, train steps, embed)", metric="GiB",
                    higher_is_better=False, ours_label="benchmarks.scale.run_scale", peer_label="—",
                    ours=peak.get("peak_rss_gib"), peer=None, repeats=1,
                    ours_mem_mb=(peak.get("peak_rss_gib") or 0) * 1024,
                    target=f"<= {TARGET_RAM_GIB:g} GiB RAM on CPU", target_met=result.get("within_ram_target"),
                    status=result.get("status", "?"), extra=extra,
                    notes=("measured at this size; file-backed pages of the memmaps count in RSS (page cache the "
                           "kernel may drop), the anon peak is the part that must fit."
                           + (" At 4M the anon peak is an analytic ESTIMATE from array sizes (see the JSON's "
                              "memory_gib_estimate)." if ex else "") + src + ex_note),
                    **common))
    if "knn_recall" in st and "knn_search" in st and "knn_index" in st:
        kr, ks, ki = st["knn_recall"], st["knn_search"], st["knn_index"]
        approx_s = ks["seconds"] + ki["seconds"]
        kx = {"recall_at_k": kr["recall_at_k"], "index_build_s": ki["seconds"], "search_s": ks["seconds"],
              "speedup_extrapolated": kr["speedup_vs_exact_extrapolated"]}
        if ex:
            kx["index_plus_search_s_at_4M_extrapolated"] = ex["stage_seconds"]["knn_index"] + \
                ex["stage_seconds"]["knn_search"]
            kx["index_kind_at_4M"] = ex["index_kind"]
        rows.append(Row(name=f"approximate kNN graph (k={kr['k']}) over the memmap", metric="s",
                        higher_is_better=False,
                        ours_label=(f"vidsage_core.graph ivf-gemm {ki.get('params')}: FAISS k-means lists, one "
                                    "torch GEMM per list over the memmap"
                                    if ki.get("kind") == "ivf-gemm" else
                                    f"FAISS {ki.get('kind')} {ki.get('params')} built in blocks, wrapped in "
                                    "vidsage_core.graph.KnnIndex"),
                        peer_label="exact brute force (numpy, blocked), EXTRAPOLATED from "
                                   f"{kr['sample']} queries", ours=approx_s, repeats=1,
                        peer=kr["exact_full_graph_seconds_extrapolated"],
                        ours_mem_mb=max(ki["peak_rss_gib"], ks["peak_rss_gib"]) * 1024,
                        peer_mem_mb=kr["peak_rss_gib"] * 1024,
                        target="recall@25 >= 0.95 at >= 5x faster (the knn target, informational here)",
                        target_met=(kr["recall_at_k"] >= 0.95 and kr["speedup_vs_exact_extrapolated"] >= 5),
                        extra=kx,
                        notes=f"exact side extrapolated linearly from {kr['sample']} sampled queries "
                              f"({kr['exact_seconds_sample']:.1f} s); recall@{kr['k']} on those queries." + src,
                        **common))
    if "train" in st:
        tr = st["train"]
        med = tr["median"]
        gpu = "cuda" in dev
        tx = {"step_s_median": med["step_s"], "sample_s_median": med["sample_s"],
              "gather_s_median": med["gather_s"], "compute_s_median": med["compute_s"],
              "subgraph_nodes_median": med["subgraph_nodes"], "subgraph_edges_median": med["subgraph_edges"],
              "steps_per_epoch": tr["steps_per_epoch"], "steps_timed": tr["steps_timed"],
              "loss_first": tr.get("loss_first"), "loss_last": tr.get("loss_last")}
        if ex and "train_epoch_s" in ex:
            tx["step_s_at_4M_extrapolated"] = ex["train_step_s"]
            tx["epoch_s_at_4M_extrapolated"] = ex["train_epoch_s"]
        rows.append(Row(name="training: one epoch (time per step x steps per epoch)",
                        metric="s per epoch (EXTRAPOLATED)",
                        higher_is_better=False,
                        ours_label=f"VidSage, fan-outs {tr['fanouts']}, batch {tr['batch_size']}, NeighborSampler "
                                   "over the graph, features gathered from the memmap",
                        peer_label="—", ours=tr["epoch_s_extrapolated"], peer=None, repeats=tr["steps_timed"],
                        ours_mem_mb=tr["peak_rss_gib"] * 1024,
                        target="one epoch <= 5 min on an H100" + ("" if gpu else " (no GPU here: not measurable)"),
                        target_met=(tr["epoch_s_extrapolated"] <= TARGET_GPU_EPOCH_S) if gpu else None,
                        extra=tx,
                        notes=(f"EXTRAPOLATED: {tr['steps_timed']} timed steps (after {tr['warmup_steps']} warm-up), "
                               f"epoch = {tr['steps_per_epoch']:,} steps x median step time; a step = sampling + "
                               "memmap gather + forward/backward/AdamW." + src + ex_note), **common))
    if "embed" in st:
        em = st["embed"]
        ey = {"seconds": em["seconds"]}
        if ex:
            ey["seconds_at_4M_extrapolated"] = ex["stage_seconds"].get("embed")
        rows.append(Row(name="embedding every video (layer-wise, whole graph)", metric="videos/s",
                        higher_is_better=True, ours_label="benchmarks.scale.layerwise_embed (VidSage, eval mode)",
                        peer_label="—", ours=em.get("videos_per_s"), peer=None, repeats=1,
                        ours_mem_mb=em["peak_rss_gib"] * 1024,
                        extra=ey, notes="all N videos, one pass per layer." + src, **common))
    return rows
