"""Nearest-neighbour search over video features: exact, FAISS IVF / HNSW, and IVF as GEMM.

Nothing here forms an all-pairs ``N x N`` matrix: neighbours come from FAISS (exact
``IndexFlat*`` or approximate IVF / HNSW indexes) or torch matmul + top-k queried in blocks, or
from IVF probing done as one matrix product per inverted list ("ivf-gemm", for the whole graph
at once, reading a float16 memmap list by list), so graphs scale to millions of videos.

Distances follow FAISS's L2 convention on unit vectors (see :class:`KnnIndex`); the graph
builders in :mod:`vidsage_core.graph` turn them into the paper's ``g = 1 - ||x_u - x_v||``.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

__all__ = [
    "DEFAULT_NPROBE",
    "DEFAULT_GEMM_NPROBE",
    "DEFAULT_HNSW_M",
    "DEFAULT_EF_SEARCH",
    "DEFAULT_EF_CONSTRUCTION",
    "MODES",
    "KnnIndex",
    "as_array",
    "as_float32",
    "build_index",
    "knn",
]

# Defaults, chosen by measurement (see the docstrings of build_index / knn for the numbers).
DEFAULT_NPROBE = 64  # IVF cells probed per query; see knn
DEFAULT_GEMM_NPROBE = 4  # ivf-gemm lists probed per query; see knn
DEFAULT_HNSW_M = 32  # HNSW links per node
DEFAULT_EF_SEARCH = 128  # HNSW search beam; see knn
DEFAULT_EF_CONSTRUCTION = 80  # HNSW build beam (faiss default 40 loses recall in 1024-D)

UNIT_NORM_TOL = 1e-3  # |1 - ||x||| above this is "not L2-normalised"
MODES = ("exact", "ivf", "hnsw", "ivf-gemm")


def as_float32(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {x.shape}")
    return x


def _is_unit_norm(x: np.ndarray, tol: float = UNIT_NORM_TOL, block: int = 65536) -> bool:
    for s in range(0, x.shape[0], block):
        n = np.linalg.norm(np.asarray(x[s:s + block], dtype=np.float32), axis=1)
        if n.size and np.abs(n - 1.0).max() > tol:
            return False
    return True


def _faiss_gpu_available() -> bool:
    import faiss

    return hasattr(faiss, "StandardGpuResources") and faiss.get_num_gpus() > 0


_GPU_RESOURCES = None


def _gpu_resources():
    global _GPU_RESOURCES
    if _GPU_RESOURCES is None:
        import faiss

        _GPU_RESOURCES = faiss.StandardGpuResources()
    return _GPU_RESOURCES


class _TorchFlatIndex:
    """Exact search with torch matmul + topk in query blocks.

    The default exact backend (see :func:`build_index` for the timing that chose it). The score
    block is capped at ``max_block_elems`` entries (2^25 floats = 128 MB; 14k real videos:
    2^22 / 2^24 / 2^26 took 5.9 / 4.1 / 3.9 s) so memory stays bounded for any ``N``; on the
    CPU the database is shared with the numpy array, not copied.
    """

    def __init__(self, x: np.ndarray, inner_product: bool, device: str,
                 max_block_elems: int = 1 << 25) -> None:
        self.device = device
        self.xb = torch.from_numpy(x).to(device)
        self.inner_product = inner_product
        self.sq = (self.xb * self.xb).sum(1)
        self.ntotal = x.shape[0]
        self.max_block_elems = max_block_elems

    @torch.no_grad()
    def search(self, xq: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        q = torch.from_numpy(xq).to(self.device)
        step = max(1, self.max_block_elems // max(1, self.ntotal))
        out_d, out_i = [], []
        for s in range(0, q.shape[0], step):
            qb = q[s:s + step]
            ip = qb @ self.xb.T
            if self.inner_product:
                d, i = torch.topk(ip, k, dim=1, largest=True, sorted=True)
            else:
                d2 = (qb * qb).sum(1, keepdim=True) + self.sq[None, :] - 2.0 * ip
                d, i = torch.topk(d2, k, dim=1, largest=False, sorted=True)
            out_d.append(d.cpu())
            out_i.append(i.cpu())
        return torch.cat(out_d).numpy(), torch.cat(out_i).numpy().astype(np.int64)


def as_array(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """``x`` as a 2-D floating numpy array *without* copying or converting it (a float16 memmap
    stays one); consumers convert blocks of rows to float32 as they read them."""
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    if not isinstance(x, np.ndarray):
        x = np.asarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {x.shape}")
    if not np.issubdtype(x.dtype, np.floating):
        raise ValueError(f"{name} must hold floats, got dtype {x.dtype}")
    return x


def _f32_rows(x: np.ndarray, rows: np.ndarray | slice) -> np.ndarray:
    """float32 copy of some rows of ``x`` (any float dtype, memmap included)."""
    return np.ascontiguousarray(x[rows], dtype=np.float32)


class _IvfGemmIndex:
    """IVF probing done as dense matrix products (mode ``"ivf-gemm"``).

    FAISS's ``IndexIVFFlat`` scans a probed inverted list once *per query*: a matrix-vector
    product, memory-bound (500k x 1152-d, nprobe 8: 1,091 s on 2 cores). When many queries are
    searched at once (the kNN graph: every database row is a query) the same probing can be
    regrouped by list: for each list ``l``, every query probing ``l`` forms ``Q_l`` and
    ``scores = Q_l @ X_l^T`` is one GEMM (compute-bound), followed by a per-row top-k merged
    into each query's running top-k. Same centroids, same assignment (database row -> nearest
    centroid), same probes (query -> ``nprobe`` nearest centroids) as IVF, hence the same
    candidate set and recall.

    Cost: ``2 * N^2 * D * nprobe / nlist`` flops (times the list-size imbalance) plus one
    top-k per score, against ``2 * N^2 * D`` for exact search. Measured on bench_knn's clustered
    synthetic data, 1024-d, k = 25, nlist = sqrt(N), 2 shared cores: 300k rows, nprobe 4:
    44.7 s (k-means + assignment 18.5 s, search 26.2 s), recall@25 0.996, against 248 s for
    FAISS ``IndexIVFFlat`` with the same nlist / nprobe (same recall) and ~1,990 s exact.

    Memory: the database is never copied or converted as a whole (a float16 memmap is read one
    list at a time); the running top-k is ``O(M * k)``, the probe lists ``O(N * nprobe)`` int32,
    and one score block is at most ``max_block_elems`` floats.

    Args:
        x: database ``[N, D]``, any float dtype (kept by reference, read in blocks).
        inner_product: rank by ``<q, x>`` (unit rows, spherical k-means) instead of L2.
        nlist, nprobe: inverted lists, and lists probed per query.
        train_size: k-means sample (rows drawn without replacement with ``seed``).
        kmeans_iters: k-means iterations.
        seed: sample and k-means seed (fixed seed: same lists, same results).
        device: where the products and top-k run.
        block: rows per block when assigning rows to lists.
        max_block_elems: bound on one score block (query rows x list size).
    """

    def __init__(self, x: np.ndarray, inner_product: bool, nlist: int, nprobe: int,
                 train_size: int, kmeans_iters: int, seed: int, device: str = "cpu",
                 block: int = 65536, max_block_elems: int = 1 << 25) -> None:
        import faiss

        n, d = x.shape
        self.x, self.inner_product, self.device = x, inner_product, device
        self.nlist, self.nprobe = nlist, nprobe
        self.block, self.max_block_elems = block, max_block_elems
        t0 = time.perf_counter()
        rng = np.random.default_rng(seed)
        sample = _f32_rows(x, np.sort(rng.choice(n, train_size, replace=False))
                           if train_size < n else slice(None))
        # Spherical k-means for inner product, as FAISS's IVF trains its coarse quantizer.
        km = faiss.Kmeans(d, nlist, niter=kmeans_iters, seed=seed, spherical=inner_product,
                          verbose=False)
        km.train(sample)
        del sample
        self.train_seconds = time.perf_counter() - t0
        self.centroids = torch.from_numpy(np.ascontiguousarray(km.centroids)).to(device)
        self.c_sq = (self.centroids * self.centroids).sum(1)
        # Every row's nprobe nearest centroids (column 0 = its own list) and squared norm, in
        # row blocks so no [N, nlist] score array ever exists.
        self.probes = np.empty((n, nprobe), np.int32)
        self.sq = np.empty(n, np.float32)
        for s in range(0, n, block):
            xb = torch.from_numpy(_f32_rows(x, slice(s, s + block))).to(device)
            self.probes[s:s + len(xb)] = self._nearest_centroids(xb)
            self.sq[s:s + len(xb)] = (xb * xb).sum(1).cpu().numpy()
        # Inverted lists as CSR: members[offsets[l]:offsets[l + 1]] = rows of list l, ascending.
        own = self.probes[:, 0]
        self.members = np.argsort(own, kind="stable")
        self.offsets = np.zeros(nlist + 1, np.int64)
        np.cumsum(np.bincount(own, minlength=nlist), out=self.offsets[1:])
        self.assign_seconds = time.perf_counter() - t0 - self.train_seconds

    def _nearest_centroids(self, xb: torch.Tensor) -> np.ndarray:
        """int32 ``[B, nprobe]`` nearest centroids of the rows of ``xb``, nearest first."""
        s = xb @ self.centroids.T
        if not self.inner_product:  # argmin ||x - c||^2 = argmax <x, c> - ||c||^2 / 2
            s -= 0.5 * self.c_sq
        return torch.topk(s, self.nprobe, dim=1).indices.to(torch.int32).cpu().numpy()

    @torch.no_grad()
    def search(self, queries: np.ndarray | None, k: int, exclude: np.ndarray | None = None,
               query_rows: np.ndarray | None = None,
               progress: bool = False) -> tuple[np.ndarray, np.ndarray]:
        """k nearest database rows of every query, probing ``nprobe`` lists per query.

        Args:
            queries: ``[M, D]`` query vectors (any float dtype); None when ``query_rows`` is
                given.
            k: neighbours per query.
            exclude: optional int ``[M]``: database row left out of each query's result.
            query_rows: int ``[M]``: the queries are these database rows (their probe lists
                from the build are reused and their vectors read from the database).
            progress: tqdm bar over the inverted lists.

        Returns:
            ``dist`` float32 ``[M, k]`` Euclidean distances ascending (ties: lower id first),
            ``idx`` int64 ``[M, k]``; ``inf`` / ``-1`` where the probed lists held fewer than
            ``k`` rows.
        """
        from tqdm.auto import tqdm

        dev = self.device
        if query_rows is not None:
            src, rows = self.x, np.asarray(query_rows, dtype=np.int64)
            probes, q_sq = self.probes[rows], self.sq[rows]
        else:
            src, rows = queries, np.arange(len(queries))
            probes = np.empty((len(rows), self.nprobe), np.int32)
            q_sq = np.empty(len(rows), np.float32)
            for s in range(0, len(rows), self.block):
                qb = torch.from_numpy(_f32_rows(src, slice(s, s + self.block))).to(dev)
                probes[s:s + len(qb)] = self._nearest_centroids(qb)
                q_sq[s:s + len(qb)] = (qb * qb).sum(1).cpu().numpy()
        m = len(rows)
        # Group (query, probed list) pairs by list; queries stay ascending inside a list.
        pair = np.argsort(probes.ravel(), kind="stable")
        q_offsets = np.zeros(self.nlist + 1, np.int64)
        np.cumsum(np.bincount(probes.ravel(), minlength=self.nlist), out=q_offsets[1:])
        # The running top-k lives in numpy: its small per-list updates are single-threaded
        # there, while each torch call pays an OpenMP hand-off (~8 ms on a busy 2-core box).
        best_s = np.full((m, k), -np.inf, np.float32)
        best_i = np.full((m, k), -1, np.int64)
        for lst in tqdm(range(self.nlist), disable=not progress, desc="knn[ivf-gemm]",
                        unit="list"):
            db = self.members[self.offsets[lst]:self.offsets[lst + 1]]
            qs = pair[q_offsets[lst]:q_offsets[lst + 1]] // self.nprobe  # query positions
            if not len(db) or not len(qs):
                continue
            xl_t = torch.from_numpy(_f32_rows(self.x, db)).to(dev).T
            # L2: rank by <q, x> - ||x||^2 / 2 (= (||q||^2 - ||q - x||^2) / 2, q fixed).
            bias = None if self.inner_product else torch.from_numpy(-0.5 * self.sq[db]).to(dev)
            # One extra candidate where the query's own row may be in the list (dropped below).
            kl = min(k + (exclude is not None), len(db))
            step = max(1, self.max_block_elems // len(db))
            for s in range(0, len(qs), step):
                qb = qs[s:s + step]
                sc = torch.from_numpy(_f32_rows(src, rows[qb])).to(dev) @ xl_t
                if bias is not None:
                    sc += bias
                v, i = torch.topk(sc, kl, dim=1)
                v, ids = v.cpu().numpy(), db[i.cpu().numpy()]
                if exclude is not None:
                    v[ids == exclude[qb, None]] = -np.inf
                # Merge into the running top-k (a query meets each list at most once, so the
                # rows of qb are distinct).
                cand_s = np.concatenate([best_s[qb], v], 1)
                cand_i = np.concatenate([best_i[qb], ids], 1)
                j = np.argpartition(-cand_s, k - 1, axis=1)[:, :k]
                best_s[qb] = np.take_along_axis(cand_s, j, 1)
                best_i[qb] = np.take_along_axis(cand_i, j, 1)
        best_i[best_s == -np.inf] = -1
        # Deterministic order: by score, ties by lower id (missing results last).
        order = np.lexsort((np.where(best_i < 0, np.iinfo(np.int64).max, best_i), -best_s))
        best_s = np.take_along_axis(best_s, order, 1)
        best_i = np.take_along_axis(best_i, order, 1)
        # Back to Euclidean distances as KnnIndex.search does: ||q - x||^2 = ||q||^2 + 1 -
        # 2 <q, x> for unit rows (inner product), ||q||^2 - 2 * score for L2.
        d2 = q_sq[:, None] - 2.0 * best_s
        if self.inner_product:
            d2 += 1.0
        np.maximum(d2, 0.0, out=d2)
        dist = np.sqrt(d2, out=d2).astype(np.float32, copy=False)
        dist[best_i < 0] = np.inf
        return dist, best_i


@dataclass
class KnnIndex:
    """A built neighbour index over a database ``x`` ``[N, D]`` (see :func:`build_index`).

    Attributes:
        index: the FAISS index (or the torch exact index on CUDA without faiss-gpu, or the
            torch IVF-by-GEMM index for "ivf-gemm").
        mode: "exact", "ivf", "hnsw" or "ivf-gemm".
        inner_product: True when the database is unit-norm and searched by inner product
            (distances are converted back to Euclidean either way).
        num_vectors, dim: database shape.
        params: mode parameters actually used (nlist, nprobe, M, efSearch, ...).
        backend: "faiss-cpu", "faiss-gpu" or "torch-<device>".
        build_seconds: wall time to build (train + add).
    """

    index: Any
    mode: str
    inner_product: bool
    num_vectors: int
    dim: int
    params: dict
    backend: str
    build_seconds: float

    def search(
        self,
        queries: np.ndarray,
        k: int,
        exclude: np.ndarray | None = None,
        batch_size: int = 16384,
        progress: bool = False,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Search in blocks of ``batch_size`` queries.

        Args:
            queries: float32 ``[M, D]``.
            k: neighbours per query.
            exclude: optional int ``[M]``: database row to leave out of each query's result
                (its own row when the queries are database rows). Exclusion is by index, so
                exact duplicates of the query are still returned as neighbours.
            batch_size: queries per FAISS call (bounds the result buffers). "ivf-gemm" takes
                all queries in one call (grouping them by list is the point), its memory is
                bounded by its own score blocks.
            progress: tqdm bar over blocks (over inverted lists for "ivf-gemm").

        Returns:
            ``dist`` float32 ``[M, k]`` Euclidean distances ascending, ``idx`` int64 ``[M, k]``;
            missing results (an approximate index that found fewer) are ``inf`` / ``-1``.
        """
        from tqdm.auto import tqdm

        if self.mode == "ivf-gemm":
            queries = as_array(queries, "queries")
            if queries.shape[1] != self.dim:
                raise ValueError(f"queries have dimension {queries.shape[1]}, index has {self.dim}")
            if exclude is not None:
                exclude = np.asarray(exclude, dtype=np.int64).ravel()
                if exclude.shape[0] != len(queries):
                    raise ValueError(f"exclude has {exclude.shape[0]} entries for "
                                     f"{len(queries)} queries")
            return self.index.search(queries, k, exclude=exclude, progress=progress)
        queries = as_float32(queries, "queries")
        if queries.shape[1] != self.dim:
            raise ValueError(f"queries have dimension {queries.shape[1]}, index has {self.dim}")
        m = queries.shape[0]
        if exclude is not None:
            exclude = np.asarray(exclude, dtype=np.int64).ravel()
            if exclude.shape[0] != m:
                raise ValueError(f"exclude has {exclude.shape[0]} entries for {m} queries")
        extra = 0 if exclude is None else 1
        kk = min(k + extra, self.num_vectors)
        dist = np.full((m, k), np.inf, dtype=np.float32)
        idx = np.full((m, k), -1, dtype=np.int64)
        starts = range(0, m, batch_size)
        for s in tqdm(starts, disable=not progress, desc=f"knn[{self.mode}]", unit="block"):
            q = queries[s:s + batch_size]
            d, i = self.index.search(q, kk)
            i = i.astype(np.int64, copy=False)
            if self.inner_product:
                # Unit vectors: ||q - x||^2 = ||q||^2 + 1 - 2 <q, x>.
                qn = (q * q).sum(1, keepdims=True)
                d2 = qn + 1.0 - 2.0 * d
            else:
                d2 = d
            d2 = np.where(i < 0, np.inf, np.maximum(d2, 0.0))
            if exclude is not None:
                self_hit = i == exclude[s:s + batch_size, None]
                # Drop the query's own row where FAISS returned it, otherwise the last (k+1-th)
                # candidate, so exactly k remain either way (ties with duplicates are harmless).
                drop = np.where(self_hit.any(1), self_hit.argmax(1), kk - 1)
                keep = np.ones_like(self_hit)
                keep[np.arange(len(q)), drop] = False
                if kk == k + 1:
                    i = i[keep].reshape(len(q), k)
                    d2 = d2[keep].reshape(len(q), k)
                else:  # fewer database rows than k + 1
                    i = np.where(keep, i, -1)
                    d2 = np.where(keep, d2, np.inf)
                    order = np.argsort(d2, axis=1, kind="stable")
                    i = np.take_along_axis(i, order, 1)[:, :k]
                    d2 = np.take_along_axis(d2, order, 1)[:, :k]
            w = min(k, i.shape[1])
            idx[s:s + len(q), :w] = i[:, :w]
            dist[s:s + len(q), :w] = np.sqrt(d2[:, :w])
        return dist, idx


def build_index(
    x: np.ndarray | torch.Tensor,
    mode: str = "exact",
    device: str = "auto",
    metric: str = "auto",
    nlist: int | None = None,
    nprobe: int | None = None,
    hnsw_m: int = DEFAULT_HNSW_M,
    ef_search: int = DEFAULT_EF_SEARCH,
    ef_construction: int = DEFAULT_EF_CONSTRUCTION,
    train_size: int | None = None,
    seed: int = 0,
    backend: str = "auto",
    kmeans_iters: int | None = None,
) -> KnnIndex:
    """Build an exact or approximate neighbour index.

    Args:
        x: database float32 ``[N, D]``; "ivf-gemm" also takes any float dtype (e.g. a float16
            memmap) and converts it block by block, never as a whole.
        mode: "exact" (see ``backend``), "ivf" (FAISS ``IndexIVFFlat``), "hnsw" (FAISS
            ``IndexHNSWFlat``) or "ivf-gemm" (IVF probing as per-list torch matrix products,
            for searching many queries at once, e.g. the whole kNN graph; see
            :class:`_IvfGemmIndex` and :func:`knn`).
        device: "auto", "cpu" or "cuda[:i]". On CUDA, FAISS GPU indexes are used when this
            FAISS build has GPU support; otherwise exact search runs as blocked torch matmul on
            the GPU, and IVF/HNSW stay on the CPU. "ivf-gemm" runs its products on ``device``.
        metric: "auto" (inner product when every row is unit-norm, else L2), "l2" or "ip".
            Distances returned by searches are Euclidean either way; "ip" requires unit rows.
        nlist: IVF cells; default ``round(4 * sqrt(N))`` for "ivf", ``round(sqrt(N))`` for
            "ivf-gemm" (capped so every cell gets >= 39 training points, FAISS's own minimum).
        nprobe: IVF cells visited per query; default :data:`DEFAULT_NPROBE` for "ivf",
            :data:`DEFAULT_GEMM_NPROBE` for "ivf-gemm" (where ``nprobe > nlist`` is an error
            unless defaulted).
        hnsw_m: HNSW links per node.
        ef_search: HNSW search beam width.
        ef_construction: HNSW build beam width.
        train_size: IVF training sample; default ``min(N, 64 * nlist)``.
        seed: seeds the IVF training sample and k-means.
        kmeans_iters: IVF k-means iterations (None: 10, FAISS's own IVF default).
        backend: exact search engine: "torch" (blocked matmul + topk), "faiss"
            (``IndexFlatIP`` / ``IndexFlatL2``) or "auto": FAISS-GPU where available, else
            torch. Measured on this project's 2-core CPU machine (real 13,998 x 1152 videos, all
            13,998 queries, k = 25): torch 3.9 s vs FAISS flat 15.8 s (CPU time 3.9 vs 15.9 s);
            100k synthetic x 1024, 2,000 queries: 4.9 vs 16.5 CPU s; results are identical
            (both checked against brute force in the tests). "ivf" and "hnsw" always use
            FAISS; "ivf-gemm" uses FAISS k-means and torch for the rest.

    Returns:
        A :class:`KnnIndex`.
    """
    import faiss

    from vidsage_core.utils import resolve_device

    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}")
    # ivf-gemm reads x in blocks (float16 memmaps stay on disk); the FAISS modes need float32.
    x = as_array(x, "x") if mode == "ivf-gemm" else as_float32(x, "x")
    n, d = x.shape
    if n == 0:
        raise ValueError("cannot build an index over 0 vectors")
    unit = _is_unit_norm(x)
    if metric == "auto":
        inner_product = unit
    elif metric in ("ip", "l2"):
        inner_product = metric == "ip"
        if inner_product and not unit:
            raise ValueError("metric='ip' needs L2-normalised rows to return Euclidean distances")
    else:
        raise ValueError(f"metric must be 'auto', 'l2' or 'ip', got {metric!r}")
    dev = resolve_device(device)
    use_gpu = dev.startswith("cuda")
    if backend not in ("auto", "faiss", "torch"):
        raise ValueError(f"backend must be 'auto', 'faiss' or 'torch', got {backend!r}")
    if backend == "torch" and mode != "exact":
        raise ValueError("backend='torch' supports mode='exact' only")
    fmetric = faiss.METRIC_INNER_PRODUCT if inner_product else faiss.METRIC_L2
    params: dict[str, Any] = {"metric": "ip" if inner_product else "l2"}
    t0 = time.perf_counter()

    if mode == "exact" and (backend == "torch" or (backend == "auto" and not (
            use_gpu and _faiss_gpu_available()))):
        index = _TorchFlatIndex(x, inner_product, dev)
        return KnnIndex(index, mode, inner_product, n, d, params, f"torch-{dev}",
                        time.perf_counter() - t0)

    if mode == "ivf-gemm":
        default_nlist = max(1, min(int(round(math.sqrt(n))), n // 39))
        nlist = default_nlist if nlist is None else int(nlist)
        if not 1 <= nlist <= n:
            raise ValueError(f"nlist={nlist} must be in [1, N={n}]")
        if nprobe is None:
            nprobe = min(DEFAULT_GEMM_NPROBE, nlist)
        if not 1 <= nprobe <= nlist:
            raise ValueError(f"nprobe={nprobe} must be in [1, nlist={nlist}]")
        ts = int(min(n, train_size or 64 * nlist))
        if ts < nlist:
            raise ValueError(f"train_size={ts} is smaller than nlist={nlist}")
        iters = kmeans_iters or 10
        index = _IvfGemmIndex(x, inner_product, nlist, int(nprobe), ts, iters, seed, dev)
        params.update(nlist=nlist, nprobe=int(nprobe), train_size=ts, kmeans_iters=iters)
        return KnnIndex(index, mode, inner_product, n, d, params, f"torch-{dev}",
                        time.perf_counter() - t0)
    if nprobe is None:
        nprobe = DEFAULT_NPROBE
    if mode == "exact":
        index = faiss.IndexFlatIP(d) if inner_product else faiss.IndexFlatL2(d)
    elif mode == "ivf":
        if nlist is None:
            nlist = int(round(4 * math.sqrt(n)))
            nlist = max(1, min(nlist, n // 39))
        nlist = int(min(nlist, n))
        quantizer = faiss.IndexFlatIP(d) if inner_product else faiss.IndexFlatL2(d)
        index = faiss.IndexIVFFlat(quantizer, d, nlist, fmetric)
        index.cp.seed = seed
        if kmeans_iters:
            index.cp.niter = kmeans_iters
        ts = min(n, train_size or 64 * nlist)
        rng = np.random.default_rng(seed)
        sample = x if ts >= n else x[np.sort(rng.choice(n, ts, replace=False))]
        index.train(sample)
        index.nprobe = int(min(nprobe, nlist))
        params.update(nlist=nlist, nprobe=int(index.nprobe), train_size=int(ts))
    else:  # hnsw
        index = faiss.IndexHNSWFlat(d, hnsw_m, fmetric)
        index.hnsw.efConstruction = ef_construction
        index.hnsw.efSearch = ef_search
        params.update(M=hnsw_m, efSearch=ef_search, efConstruction=ef_construction)

    backend_name = "faiss-cpu"
    if use_gpu and mode != "hnsw" and _faiss_gpu_available() and backend != "torch":
        gpu_id = int(dev.split(":")[1]) if ":" in dev else 0
        index = faiss.index_cpu_to_gpu(_gpu_resources(), gpu_id, index)
        backend_name = "faiss-gpu"
    index.add(x)
    return KnnIndex(index, mode, inner_product, n, d, params, backend_name,
                    time.perf_counter() - t0)


def knn(
    x: np.ndarray | torch.Tensor,
    k: int,
    queries: np.ndarray | torch.Tensor | None = None,
    exclude_self: bool = True,
    mode: str = "exact",
    device: str = "auto",
    batch_size: int = 16384,
    query_rows: np.ndarray | None = None,
    index: KnnIndex | None = None,
    progress: bool = False,
    **index_kwargs: Any,
) -> tuple[np.ndarray, np.ndarray]:
    """k nearest neighbours (Euclidean) of queries among the rows of ``x``.

    The database is indexed once and queried in blocks of ``batch_size`` (and the exact torch
    backend scores at most 2^25 pairs at a time), so memory is ``O(N * D + batch_size * k)``,
    never ``N x N``. Exact search: torch matmul + topk by default, FAISS flat with
    ``backend="faiss"`` (see :func:`build_index`).

    Default approximate parameters were measured on the real 13,998 YouTube-8M videos
    (rgb+audio, normalised, k=25, recall@25 on 2,000 sampled queries): HNSW (M=32,
    efConstruction=80) efSearch 32 / 64 / 128 / 256 -> 0.984 / 0.993 / 0.997 / 0.999; IVF
    (nlist = 4 sqrt(N) = 358) nprobe 8 / 16 / 32 / 64 -> 0.821 / 0.890 / 0.934 / 0.964. The
    defaults (efSearch 128, nprobe 64) are the cheapest settings above 0.95. Timings at larger
    sizes: ``benchmarks/bench_knn.py``.

    ``mode="ivf-gemm"`` does IVF's probing as one matrix product per inverted list (see
    :class:`_IvfGemmIndex`): same candidates as "ivf" with the same lists, but compute-bound,
    so it is the mode for the full kNN graph at scale. It reads ``x`` block by block (a float16
    memmap is never converted as a whole) and takes all queries in one pass (``batch_size`` does
    not apply). Its defaults, nlist = sqrt(N) and nprobe 4, were measured on bench_knn's
    clustered synthetic 1024-d data (k = 25, recall@25 on 1,000 sampled queries; time = k-means
    + assignment + search of all N rows on 2 cores shared with another job (load ~3.5); exact
    time extrapolated from 2,000 sampled queries):

    ======  ======  ======  ======  ==================  ============
    N       nprobe  recall  time    FAISS ivf, same     exact (est.)
    ======  ======  ======  ======  ==================  ============
    100k    2       0.966   11.8 s  32 s                209 s
    100k    4       0.980   14.1 s  49 s                209 s
    100k    8       0.988   19.4 s  88 s                209 s
    300k    2       0.993   34.7 s  151 s               1,990 s
    300k    4       0.996   44.7 s  248 s               1,990 s
    300k    8       0.997   65.1 s  428 s               1,990 s
    ======  ======  ======  ======  ==================  ============

    ("FAISS ivf, same": ``IndexIVFFlat`` with the same nlist / nprobe, hence the same recall;
    its search time extrapolated from 2,000 sampled queries.) nprobe 4 is the smallest setting
    with recall >= 0.97 at both sizes. The real 13,998 videos are harder for IVF (their nearest
    neighbours are far): nlist 118, nprobe 4 / 8 / 16 / 32 -> recall@25 0.790 / 0.869 / 0.920 /
    0.955 (all queries); at that size exact search (4 s) is the better choice anyway.

    Args:
        x: database float32 ``[N, D]`` (any float dtype, e.g. a float16 memmap, for
            "ivf-gemm").
        k: neighbours per query.
        queries: float32 ``[M, D]``; default: the database itself (``M = N``).
        exclude_self: when the queries are database rows (``queries is None`` or
            ``query_rows`` given), leave each query's own row out of its result. Exclusion is by
            index, so duplicate vectors of the query are returned (at distance 0).
        mode: "exact", "ivf", "hnsw" or "ivf-gemm" (see :func:`build_index`).
        device: "auto", "cpu" or "cuda".
        batch_size: queries per search call (not used by "ivf-gemm").
        query_rows: int ``[M]``: query with these rows of ``x`` (instead of ``queries``).
        index: a prebuilt :class:`KnnIndex` over ``x`` (skips building).
        progress: tqdm bar over query blocks (over inverted lists for "ivf-gemm").
        **index_kwargs: passed to :func:`build_index` (nlist, nprobe, hnsw_m, ef_search, ...).

    Returns:
        ``dist`` float32 ``[M, k]`` (ascending Euclidean distances) and ``idx`` int64 ``[M, k]``;
        approximate modes pad with ``inf`` / ``-1`` where they found fewer than ``k``.
    """
    gemm = (index.mode if index is not None else mode) == "ivf-gemm"
    # ivf-gemm reads x (and its own rows as queries) block by block; the others need float32.
    x = as_array(x, "x") if gemm else as_float32(x, "x")
    n = x.shape[0]
    if queries is not None and query_rows is not None:
        raise ValueError("give either queries or query_rows, not both")
    self_query = queries is None
    exclude = None
    if self_query:
        rows = np.arange(n) if query_rows is None else np.asarray(query_rows, dtype=np.int64)
        q = None if gemm else (x if query_rows is None else x[rows])
        if exclude_self:
            exclude = rows
    else:
        q = as_array(queries, "queries") if gemm else as_float32(queries, "queries")
    avail = n - (1 if exclude is not None else 0)
    if not 1 <= k <= avail:
        raise ValueError(f"k={k} must be in [1, {avail}] for a database of {n} vectors"
                         + (" (self excluded)" if exclude is not None else ""))
    if index is None:
        index = build_index(x, mode=mode, device=device, **index_kwargs)
    elif index.num_vectors != n:
        raise ValueError(f"index holds {index.num_vectors} vectors, x has {n}")
    if gemm and self_query:  # database rows as queries: reuse their probe lists from the build
        return index.index.search(None, k, exclude=exclude, query_rows=rows, progress=progress)
    return index.search(q, k, exclude=exclude, batch_size=batch_size, progress=progress)
