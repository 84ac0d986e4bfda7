"""Video graphs: nearest neighbours, LiteVidSage and VidSage graphs, and their statistics.

Paper §3.3. Every video is a node. LiteVidSage connects ``u`` and ``v`` when
``g(u, v) = 1 - ||x_u - x_v|| >= tau`` on L2-normalised features; VidSage adds object edges
weighted by the Jaccard index of the videos' object sets and mixes the two,
``w = alpha * w1 + beta * w2``.

Nothing here forms an all-pairs ``N x N`` matrix: neighbours come from FAISS (exact
``IndexFlat*`` or approximate IVF / HNSW indexes) queried in blocks, or from IVF probing done as
one matrix product per inverted list ("ivf-gemm", for the whole graph at once), and Jaccard
pairs come from an inverted index (sparse ``B @ B.T`` in row blocks), so graphs scale to
millions of videos.

Graphs follow PyTorch Geometric conventions: ``edge_index`` is a long ``[2, E]`` tensor holding
both directions of every undirected edge, no self loops, sorted by ``(row, col)``.
"""

from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "DEFAULT_K",
    "DEFAULT_TAU",
    "DEFAULT_NPROBE",
    "DEFAULT_GEMM_NPROBE",
    "DEFAULT_HNSW_M",
    "DEFAULT_EF_SEARCH",
    "DEFAULT_MIN_JACCARD",
    "DEFAULT_MAX_PER_NODE",
    "DEFAULT_MAX_OBJECT_FREQUENCY",
    "VideoGraph",
    "KnnIndex",
    "build_index",
    "knn",
    "knn_recall",
    "build_graph",
    "lite_graph",
    "jaccard_edges",
    "vidsage_graph",
    "graph_stats",
]

# ---------------------------------------------------------------------------------------------
# Defaults, chosen by measurement (see the docstrings of lite_graph / jaccard_edges / knn for the
# numbers and the scripts that produced them).
# ---------------------------------------------------------------------------------------------
DEFAULT_K = 25  # LiteVidSage neighbour cap per node; see lite_graph for the measurement
DEFAULT_TAU = -0.35  # LiteVidSage threshold on g = 1 - ||x_u - x_v|| (g in [-1, 1]); see lite_graph
DEFAULT_NPROBE = 64  # IVF cells probed per query; see knn
DEFAULT_GEMM_NPROBE = 4  # ivf-gemm lists probed per query; see knn
DEFAULT_HNSW_M = 32  # HNSW links per node
DEFAULT_EF_SEARCH = 128  # HNSW search beam; see knn
DEFAULT_EF_CONSTRUCTION = 80  # HNSW build beam (faiss default 40 loses recall in 1024-D)
DEFAULT_MIN_JACCARD = 0.1  # object edges weaker than this carry almost no signal; see jaccard_edges
DEFAULT_MAX_PER_NODE = 25  # top-m Jaccard partners kept per node (same budget as the kNN cap)
DEFAULT_MAX_OBJECT_FREQUENCY = 0.05  # objects in > 5% of videos do not generate candidate pairs

_UNIT_NORM_TOL = 1e-3
_MODES = ("exact", "ivf", "hnsw", "ivf-gemm")


# ---------------------------------------------------------------------------------------------
# The graph container
# ---------------------------------------------------------------------------------------------
@dataclass
class VideoGraph:
    """An undirected, weighted video graph stored the PyG way.

    Attributes:
        edge_index: long ``[2, E]``; both directions of every undirected edge, no self loops,
            sorted by ``(row, col)`` (so ``edge_index[0]`` is non-decreasing).
        edge_weight: float32 ``[E]``; ``edge_weight[e]`` belongs to ``edge_index[:, e]`` and is
            equal for ``(u, v)`` and ``(v, u)``.
        num_nodes: number of videos ``N`` (isolated videos are still nodes).
        meta: provenance: ``kind`` ("lite" / "vidsage" / ...), ``k``, ``tau``, ``alpha``,
            ``beta``, ``object_source`` and whatever the builder recorded.
    """

    edge_index: torch.Tensor
    edge_weight: torch.Tensor
    num_nodes: int
    meta: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        ei, ew = self.edge_index, self.edge_weight
        if ei.dim() != 2 or ei.shape[0] != 2:
            raise ValueError(f"edge_index must be [2, E], got {tuple(ei.shape)}")
        if ei.dtype != torch.long:
            raise ValueError(f"edge_index must be torch.long, got {ei.dtype}")
        if ew.dim() != 1 or ew.shape[0] != ei.shape[1]:
            raise ValueError(f"edge_weight must be [E={ei.shape[1]}], got {tuple(ew.shape)}")
        if ew.dtype != torch.float32:
            raise ValueError(f"edge_weight must be torch.float32, got {ew.dtype}")
        self.num_nodes = int(self.num_nodes)
        if ei.numel() and (int(ei.min()) < 0 or int(ei.max()) >= self.num_nodes):
            raise ValueError(f"edge_index has node ids outside [0, {self.num_nodes})")

    @property
    def num_edges(self) -> int:
        """Number of directed entries ``E`` (= 2 x the number of undirected edges)."""
        return int(self.edge_index.shape[1])

    @property
    def num_undirected_edges(self) -> int:
        return self.num_edges // 2

    def degree(self) -> torch.Tensor:
        """Unweighted degree of every node, long ``[N]``."""
        return torch.bincount(self.edge_index[0], minlength=self.num_nodes)

    def csr(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Compressed sparse rows for neighbour sampling.

        Returns:
            ``rowptr`` long ``[N + 1]``, ``col`` long ``[E]``, ``weight`` float32 ``[E]``: the
            neighbours of node ``i`` are ``col[rowptr[i]:rowptr[i + 1]]`` (ascending).
        """
        rowptr = torch.zeros(self.num_nodes + 1, dtype=torch.long)
        torch.cumsum(self.degree(), dim=0, out=rowptr[1:])
        return rowptr, self.edge_index[1], self.edge_weight

    def to_scipy(self) -> sp.csr_matrix:
        """Weighted adjacency as a scipy CSR matrix ``[N, N]`` (float32)."""
        ei = self.edge_index.numpy()
        return sp.csr_matrix(
            (self.edge_weight.numpy(), (ei[0], ei[1])), shape=(self.num_nodes, self.num_nodes)
        )

    def to_pyg(self):
        """``torch_geometric.data.Data`` with ``edge_index``, ``edge_weight``, ``num_nodes``.

        Node features are not attached (``x`` is set by the caller, usually the trainer).
        """
        from torch_geometric.data import Data

        return Data(edge_index=self.edge_index, edge_weight=self.edge_weight,
                    num_nodes=self.num_nodes)

    def validate(self) -> None:
        """Check the PyG invariants (symmetric, no self loops, sorted, no duplicates).

        Raises:
            ValueError: naming the first violated invariant.
        """
        r, c = self.edge_index[0].numpy(), self.edge_index[1].numpy()
        if np.any(r == c):
            raise ValueError("graph has self loops")
        key = r.astype(np.int64) * self.num_nodes + c
        if np.any(np.diff(key) <= 0):
            raise ValueError("edge_index is not sorted by (row, col) or has duplicate edges")
        rkey = c.astype(np.int64) * self.num_nodes + r
        order = np.argsort(rkey, kind="stable")
        if not np.array_equal(rkey[order], key):
            raise ValueError("graph is not symmetric")
        w = self.edge_weight.numpy()
        if not np.array_equal(w[order], w):
            raise ValueError("edge weights are not symmetric")

    def save(self, path: str | Path) -> Path:
        """Write the graph with ``torch.save`` (tensors + JSON-like meta).

        Returns:
            The path written.
        """
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(
            {
                "edge_index": self.edge_index,
                "edge_weight": self.edge_weight,
                "num_nodes": self.num_nodes,
                "meta": _plain(self.meta),
            },
            path,
        )
        return path

    @classmethod
    def load(cls, path: str | Path) -> "VideoGraph":
        """Read a graph written by :meth:`save` (``weights_only`` loading: no pickled code)."""
        from vidsage_core.safe_io import UnsafeFileError, load_tensor_file

        d = load_tensor_file(path, "graph")
        if not isinstance(d, dict) or not {"edge_index", "edge_weight", "num_nodes", "meta"} <= set(d):
            raise UnsafeFileError(f"{path}: not a VideoGraph file (VideoGraph.save writes edge_index, "
                                  "edge_weight, num_nodes, meta)")
        return cls(d["edge_index"], d["edge_weight"], int(d["num_nodes"]), dict(d["meta"]))


def _plain(obj: Any) -> Any:
    """Meta values as plain Python objects (safe for ``weights_only`` loading and JSON)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, Path):
        return str(obj)
    return obj


def build_graph(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray | float,
    num_nodes: int,
    meta: dict | None = None,
    symmetrize: bool = True,
    reduce: str = "max",
) -> VideoGraph:
    """Make a :class:`VideoGraph` from (possibly one-directional, duplicated) edge lists.

    Self loops are dropped; with ``symmetrize`` every ``(u, v)`` also yields ``(v, u)`` (the
    union of both directions); duplicates are merged with ``reduce``.

    Args:
        rows, cols: int ``[M]`` endpoints.
        weights: float ``[M]`` or a scalar applied to every edge.
        num_nodes: ``N``.
        meta: provenance stored on the graph.
        symmetrize: add the reverse of every edge.
        reduce: how duplicate ``(u, v)`` entries combine: "max", "sum" or "min".

    Returns:
        A sorted, coalesced, self-loop-free graph.
    """
    rows = np.asarray(rows, dtype=np.int64).ravel()
    cols = np.asarray(cols, dtype=np.int64).ravel()
    w = np.broadcast_to(np.asarray(weights, dtype=np.float32), rows.shape).astype(np.float32)
    if rows.shape != cols.shape:
        raise ValueError(f"rows {rows.shape} and cols {cols.shape} differ in length")
    keep = rows != cols
    rows, cols, w = rows[keep], cols[keep], w[keep]
    if symmetrize:
        rows, cols, w = np.concatenate([rows, cols]), np.concatenate([cols, rows]), np.tile(w, 2)
    if rows.size and (rows.min() < 0 or max(rows.max(), cols.max()) >= num_nodes):
        raise ValueError(f"edge endpoints outside [0, {num_nodes})")
    key = rows * np.int64(num_nodes) + cols
    ukey, inv = np.unique(key, return_inverse=True)
    if reduce == "sum":
        uw = np.bincount(inv, weights=w, minlength=ukey.size).astype(np.float32)
    elif reduce in ("max", "min"):
        fill = -np.inf if reduce == "max" else np.inf
        uw = np.full(ukey.size, fill, dtype=np.float32)
        (np.maximum if reduce == "max" else np.minimum).at(uw, inv, w)
    else:
        raise ValueError(f"reduce must be 'max', 'sum' or 'min', got {reduce!r}")
    edge_index = torch.from_numpy(np.stack([ukey // num_nodes, ukey % num_nodes]))
    return VideoGraph(edge_index.long().contiguous(), torch.from_numpy(uw), int(num_nodes),
                      dict(meta or {}))


# ---------------------------------------------------------------------------------------------
# Nearest neighbours
# ---------------------------------------------------------------------------------------------
def _as_float32(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().numpy()
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2:
        raise ValueError(f"{name} must be 2-D [N, D], got shape {x.shape}")
    return x


def _is_unit_norm(x: np.ndarray, tol: float = _UNIT_NORM_TOL, block: int = 65536) -> bool:
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


def _as_array(x: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
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
            queries = _as_array(queries, "queries")
            if queries.shape[1] != self.dim:
                raise ValueError(f"queries have dimension {queries.shape[1]}, index has {self.dim}")
            if exclude is not None:
                exclude = np.asarray(exclude, dtype=np.int64).ravel()
                if exclude.shape[0] != len(queries):
                    raise ValueError(f"exclude has {exclude.shape[0]} entries for "
                                     f"{len(queries)} queries")
            return self.index.search(queries, k, exclude=exclude, progress=progress)
        queries = _as_float32(queries, "queries")
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

    if mode not in _MODES:
        raise ValueError(f"mode must be one of {_MODES}, got {mode!r}")
    # ivf-gemm reads x in blocks (float16 memmaps stay on disk); the FAISS modes need float32.
    x = _as_array(x, "x") if mode == "ivf-gemm" else _as_float32(x, "x")
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
    x = _as_array(x, "x") if gemm else _as_float32(x, "x")
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
        q = _as_array(queries, "queries") if gemm else _as_float32(queries, "queries")
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


def knn_recall(
    x: np.ndarray | torch.Tensor,
    k: int,
    mode: str,
    sample: int = 1000,
    seed: int = 0,
    device: str = "auto",
    index: KnnIndex | None = None,
    exact_index: KnnIndex | None = None,
    **index_kwargs: Any,
) -> dict:
    """Recall@k of an approximate mode against exact search on a sample of database rows.

    Recall@k = mean over sampled queries of ``|approx top-k ∩ exact top-k| / k`` (self
    excluded on both sides).

    Args:
        x: database float32 ``[N, D]``.
        k: neighbours.
        mode: "ivf", "hnsw", "ivf-gemm" (or "exact", which gives 1.0).
        sample: number of query rows, drawn without replacement with ``seed``.
        seed: sample seed (also the IVF seed when the index is built here).
        device: as in :func:`knn`.
        index, exact_index: prebuilt indexes over ``x`` to reuse.
        **index_kwargs: passed to :func:`build_index` for the approximate index.

    Returns:
        dict with ``recall``, ``k``, ``mode``, ``sample``, ``params``, ``approx_query_s`` and
        ``exact_query_s`` (seconds for the sampled queries) and ``build_s``.
    """
    x = _as_float32(x, "x")
    n = x.shape[0]
    rng = np.random.default_rng(seed)
    rows = np.sort(rng.choice(n, size=min(sample, n), replace=False))
    if index is None:
        index_kwargs.setdefault("seed", seed)
        index = build_index(x, mode=mode, device=device, **index_kwargs)
    if exact_index is None:
        exact_index = build_index(x, mode="exact", device=device)
    t0 = time.perf_counter()
    _, ia = knn(x, k, query_rows=rows, index=index)
    t1 = time.perf_counter()
    _, ie = knn(x, k, query_rows=rows, index=exact_index)
    t2 = time.perf_counter()
    hits = sum(len(np.intersect1d(a[a >= 0], e)) for a, e in zip(ia, ie))
    return {
        "recall": hits / (k * len(rows)),
        "k": k,
        "mode": index.mode,
        "sample": int(len(rows)),
        "params": dict(index.params),
        "build_s": index.build_seconds,
        "approx_query_s": t1 - t0,
        "exact_query_s": t2 - t1,
    }


# ---------------------------------------------------------------------------------------------
# LiteVidSage
# ---------------------------------------------------------------------------------------------
def lite_graph(
    x: np.ndarray | torch.Tensor,
    k: int = DEFAULT_K,
    tau: float = DEFAULT_TAU,
    mode: str = "exact",
    device: str = "auto",
    symmetrize: str = "union",
    batch_size: int = 16384,
    progress: bool = False,
    **index_kwargs: Any,
) -> VideoGraph:
    """LiteVidSage graph: ``u ~ v`` iff ``g(u, v) = 1 - ||x_u - x_v|| >= tau`` among the ``k``
    nearest neighbours of ``u`` (or of ``v``), all edges weight 1 (the paper's ``w2``).

    Unit vectors give ``||x_u - x_v|| in [0, 2]`` so ``g in [-1, 1]`` (``g = 0`` is cosine
    similarity 0.5). The ``k`` cap keeps the out-degree bounded (the union symmetrisation adds
    in-edges: mean degree <= 2k; hubs can reach a few hundred).

    Defaults ``k = 25, tau = -0.35`` were chosen by measurement on the real 13,998-video
    YouTube-8M set (rgb+audio concatenated, then L2-normalised), graph over all videos,
    labels of train (md5 buckets 2-4) and validation (bucket 1) only; the test bucket 0 was
    never looked at. "hom." = fraction of train/val edges whose endpoints share a label (random
    pairs: 0.082); "val GAP" = GAP@20 (``vidsage_core.metrics.gap``) on validation of the
    average of the labels of each validation video's *training* neighbours in the graph (for
    reference, the 25 nearest training videos by cosine give 0.572). Regenerate with
    ``python benchmarks/bench_knn.py --sweep-graph-defaults``:

    ===  =====  ========  =======  =====  =====  =======
    k    tau    mean deg  max deg  iso.   hom.   val GAP
    ===  =====  ========  =======  =====  =====  =======
    15   -0.35  22.6      214      0      0.609  0.582
    25   -0.35  36.5      250      0      0.583  0.590
    35   -0.35  50.0      269      0      0.564  0.589
    50   -0.35  69.8      280      0      0.541  0.583
    100  -0.35  132.5     344      0      0.491  0.561
    25   -0.30  34.8      249      6      0.600  0.581
    25   -0.25  25.5      223      347    0.671  0.506
    25   -0.20  15.0      177      1736   0.752  0.432
    25   0.00   1.1       47       10635  0.927  0.160
    25   0.20   0.1       10       13505  0.994  0.043
    ===  =====  ========  =======  =====  =====  =======

    On these 14k videos the nearest neighbours are far (median ``g`` of the 1st neighbour is
    -0.09, of the 25th -0.24), so every threshold that removes edges raises homophily but
    isolates videos and lowers the label-propagation quality; ``tau = -0.35`` is the largest
    tested value that removes nothing here (identical to no threshold) while still cutting
    neighbours farther than distance 1.35 on denser collections. ``k = 25`` is the best
    ``k`` and matches the paper's first-layer fan-out.

    Args:
        x: L2-normalised float32 ``[N, D]`` features (``VideoSet.features()``).
        k: neighbour cap per node.
        tau: threshold on ``g``; ``-1`` keeps every one of the ``k`` neighbours.
        mode: "exact", "ivf", "hnsw" or "ivf-gemm" neighbour search.
        device: "auto", "cpu" or "cuda".
        symmetrize: "union" (``u ~ v`` if either lists the other, the default) or "mutual"
            (both must).
        batch_size: query block size for the kNN search.
        progress: tqdm bar.
        **index_kwargs: passed to :func:`build_index`.

    Returns:
        A :class:`VideoGraph` with ``meta["kind"] == "lite"``.
    """
    x = _as_float32(x, "x")
    n = x.shape[0]
    norms = np.linalg.norm(x, axis=1)
    # All-zero rows are allowed: VideoSet.features(normalize=True) leaves them zero.
    if np.any((np.abs(norms - 1.0) > _UNIT_NORM_TOL) & (norms > 0)):
        raise ValueError("lite_graph needs L2-normalised rows (use VideoSet.features(normalize="
                         "True)); g = 1 - ||x_u - x_v|| is defined on unit vectors")
    if not -1.0 <= tau <= 1.0:
        warnings.warn(f"tau={tau} lies outside [-1, 1], the range of g on unit vectors",
                      stacklevel=2)
    if symmetrize not in ("union", "mutual"):
        raise ValueError(f"symmetrize must be 'union' or 'mutual', got {symmetrize!r}")
    k_eff = min(k, n - 1)
    meta = {"kind": "lite", "k": k, "tau": tau, "mode": mode, "symmetrize": symmetrize,
            "similarity": "g = 1 - ||x_u - x_v||", "weight": "w2 = 1"}
    if k_eff < 1:
        return build_graph(np.zeros(0), np.zeros(0), 1.0, n, meta)
    dist, idx = knn(x, k_eff, mode=mode, device=device, batch_size=batch_size,
                    progress=progress, **index_kwargs)
    keep = (idx >= 0) & (1.0 - dist >= tau)
    rows = np.repeat(np.arange(n, dtype=np.int64), k_eff)[keep.ravel()]
    cols = idx[keep]
    meta["directed_candidates"] = int(keep.sum())
    if symmetrize == "mutual":
        g = build_graph(rows, cols, 1.0, n, meta, symmetrize=False)
        a = g.to_scipy()
        a = a.minimum(a.T).tocoo()
        return build_graph(a.row, a.col, 1.0, n, meta, symmetrize=False)
    return build_graph(rows, cols, 1.0, n, meta, symmetrize=True, reduce="max")


# ---------------------------------------------------------------------------------------------
# Object (Jaccard) edges
# ---------------------------------------------------------------------------------------------
def _incidence(object_sets: Sequence[frozenset[str] | set[str]]) -> tuple[sp.csr_matrix, list]:
    vocab: dict[str, int] = {}
    indptr = [0]
    indices: list[int] = []
    for s in object_sets:
        ids = sorted({vocab.setdefault(o, len(vocab)) for o in s})
        indices.extend(ids)
        indptr.append(len(indices))
    n = len(object_sets)
    b = sp.csr_matrix(
        (np.ones(len(indices), dtype=np.float32), np.asarray(indices, dtype=np.int64),
         np.asarray(indptr, dtype=np.int64)),
        shape=(n, len(vocab)),
    )
    names = [None] * len(vocab)
    for o, j in vocab.items():
        names[j] = o
    return b, names


def jaccard_edges(
    object_sets: Sequence[frozenset[str] | set[str]],
    min_jaccard: float = DEFAULT_MIN_JACCARD,
    max_per_node: int | None = DEFAULT_MAX_PER_NODE,
    max_object_frequency: float | None = DEFAULT_MAX_OBJECT_FREQUENCY,
    max_block_pairs: int = 1 << 24,
    progress: bool = False,
    return_info: bool = False,
) -> tuple[torch.Tensor, torch.Tensor] | tuple[torch.Tensor, torch.Tensor, dict]:
    """Object edges ``w1(u, v) = |O_u ∩ O_v| / |O_u ∪ O_v|`` through an inverted index.

    Candidate pairs are the pairs of videos that share at least one object, found with the
    sparse product ``B_r @ B_r.T`` of the video x object incidence matrix ``B``, never by
    enumerating all pairs. Rows go in blocks sized so that a block's candidate pairs (bounded
    above by ``sum_{o in O_u} df(o)`` per row) stay under ``max_block_pairs``, so memory is
    bounded whatever the data. Two caps keep the work itself bounded:

    * ``max_object_frequency``: an object present in more than this fraction of the videos
      (or this many videos, if >= 1) is a "stop object": it does not *generate* candidate pairs
      (an object in half the videos alone would create ``N^2/8`` pairs). It still counts in the
      Jaccard index of pairs found through other objects, so ``w1`` is the paper's exact
      Jaccard index over the full sets.
    * ``max_per_node``: each video keeps its ``m`` highest-Jaccard partners; edges are then
      symmetrised (union), so degrees stay ``O(m)`` on average. Ties (common: Jaccard values
      are small fractions) are broken by a fixed symmetric hash of the pair, not by index,
      so low-numbered videos do not become hubs.

    ``min_jaccard`` drops weak pairs. Defaults (0.1, 25, 5%) were measured with the proxy
    concepts of ``vidsage_core.objects.FeatureCodebookProxy`` on the real YouTube-8M videos
    (table there): in a first sweep ``min_jaccard`` 0.2 instead of 0.1 raised homophily (e.g.
    0.46 -> 0.72 at 8 sub-spaces x 64 words) but isolated videos and lowered the validation GAP
    of neighbour-label averaging in every setting tried (e.g. 0.456 -> 0.307; 14 settings);
    ``m = 25`` matches the kNN cap.

    Args:
        object_sets: per-video object sets, ``[N]``.
        min_jaccard: keep pairs with ``w1 >= min_jaccard`` (must be > 0).
        max_per_node: top-m partners per video (``None`` keeps all).
        max_object_frequency: stop-object threshold (fraction of ``N`` if < 1, else a count;
            ``None`` disables).
        max_block_pairs: bound on candidate pairs per row block (memory).
        progress: tqdm bar over row blocks.
        return_info: also return a dict (stop objects, candidate pairs, ...).

    Returns:
        ``edge_index`` long ``[2, E]`` (symmetric, sorted, no self loops) and ``weight``
        float32 ``[E]``; plus the info dict when ``return_info``.
    """
    from tqdm.auto import tqdm

    if min_jaccard <= 0:
        raise ValueError("min_jaccard must be > 0 (0 would connect every pair)")
    n = len(object_sets)
    b, names = _incidence(object_sets)
    sizes = np.asarray(b.sum(1)).ravel()
    df = np.asarray(b.sum(0)).ravel()
    if max_object_frequency is None:
        limit = np.inf
    elif max_object_frequency < 1:
        limit = max_object_frequency * n
    else:
        limit = float(max_object_frequency)
    stop = df > limit
    # Objects seen once cannot link two videos; dropping them keeps B_r small.
    gen = (~stop) & (df >= 2)
    b_gen = b[:, np.flatnonzero(gen)].tocsr()
    b_gen_t = b_gen.T.tocsr()
    b_stop = b[:, np.flatnonzero(stop)].tocsr()
    rows_out, cols_out, w_out = [], [], []
    candidates = 0
    # Upper bound of each row's candidate count, then blocks of bounded total.
    bound = np.asarray(b_gen @ df[gen].astype(np.float64)).ravel()
    cum = np.cumsum(bound)
    bounds = [0]
    while bounds[-1] < n:
        s = bounds[-1]
        base = cum[s - 1] if s else 0.0
        e = int(np.searchsorted(cum, base + max_block_pairs, side="right"))
        bounds.append(min(n, max(e, s + 1)))
    blocks = list(zip(bounds[:-1], bounds[1:]))
    for s, e in tqdm(blocks, disable=not progress, desc="jaccard", unit="block"):
        inter = (b_gen[s:e] @ b_gen_t).tocoo()
        r = inter.row.astype(np.int64) + s
        c = inter.col.astype(np.int64)
        cnt = inter.data
        off = r != c
        r, c, cnt = r[off], c[off], cnt[off]
        candidates += r.size
        if b_stop.shape[1]:
            # Stop objects still count in the intersection of the pairs found.
            cnt = cnt + np.asarray(b_stop[r].multiply(b_stop[c]).sum(1)).ravel()
        jac = cnt / (sizes[r] + sizes[c] - cnt)
        ok = jac >= min_jaccard
        r, c, jac = r[ok], c[ok], jac[ok].astype(np.float32)
        if max_per_node is not None and r.size:
            # Sort by row, then Jaccard descending, then a symmetric pair hash; keep first m.
            order = np.lexsort((_pair_hash(r, c), -jac, r))
            r, c, jac = r[order], c[order], jac[order]
            first = np.searchsorted(r, r, side="left")
            rank = np.arange(r.size) - first
            ok = rank < max_per_node
            r, c, jac = r[ok], c[ok], jac[ok]
        rows_out.append(r)
        cols_out.append(c)
        w_out.append(jac)
    r = np.concatenate(rows_out) if rows_out else np.zeros(0, np.int64)
    c = np.concatenate(cols_out) if cols_out else np.zeros(0, np.int64)
    w = np.concatenate(w_out) if w_out else np.zeros(0, np.float32)
    g = build_graph(r, c, w, n, symmetrize=True, reduce="max")
    if not return_info:
        return g.edge_index, g.edge_weight
    info = {
        "num_objects": len(names),
        "stop_objects": [names[j] for j in np.flatnonzero(stop)],
        "stop_limit": None if np.isinf(limit) else float(limit),
        "candidate_pairs": int(candidates),
        "empty_sets": int((sizes == 0).sum()),
        "min_jaccard": min_jaccard,
        "max_per_node": max_per_node,
        "max_object_frequency": max_object_frequency,
    }
    return g.edge_index, g.edge_weight, info


def _pair_hash(r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """A fixed pseudo-random uint64 per unordered pair (splitmix64 of min * 2^32 + max)."""
    lo, hi = np.minimum(r, c).astype(np.uint64), np.maximum(r, c).astype(np.uint64)
    z = (lo << np.uint64(32)) | hi
    with np.errstate(over="ignore"):
        z = (z + np.uint64(0x9E3779B97F4A7C15))
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


# ---------------------------------------------------------------------------------------------
# VidSage
# ---------------------------------------------------------------------------------------------
def vidsage_graph(
    x: np.ndarray | torch.Tensor,
    object_sets: Sequence[frozenset[str] | set[str]],
    alpha: float = 0.7,
    beta: float = 0.3,
    k: int = DEFAULT_K,
    tau: float = DEFAULT_TAU,
    object_source: Any = "unknown",
    mode: str = "exact",
    device: str = "auto",
    min_jaccard: float = DEFAULT_MIN_JACCARD,
    max_per_node: int | None = DEFAULT_MAX_PER_NODE,
    max_object_frequency: float | None = DEFAULT_MAX_OBJECT_FREQUENCY,
    progress: bool = False,
    **index_kwargs: Any,
) -> VideoGraph:
    """VidSage graph: ``w(u, v) = alpha * w1(u, v) + beta * w2(u, v)``.

    ``w1`` is the Jaccard index of the object sets (:func:`jaccard_edges`), ``w2`` the
    LiteVidSage indicator (:func:`lite_graph` with ``k``, ``tau``). The edge set is the union of
    both; an edge present in only one gets 0 for the other term. The paper uses
    ``alpha = 0.7``, ``beta = 0.3``.

    Args:
        x: L2-normalised float32 ``[N, D]``.
        object_sets: ``[N]`` object sets, aligned with the rows of ``x``.
        alpha: weight of the object (Jaccard) term.
        beta: weight of the visual term.
        k, tau: LiteVidSage parameters.
        object_source: the :class:`~vidsage_core.objects.ObjectSource` (its ``name`` is
            recorded) or its name, for provenance.
        mode, device: neighbour search.
        min_jaccard, max_per_node, max_object_frequency: see :func:`jaccard_edges`.
        progress: tqdm bars.
        **index_kwargs: passed to :func:`build_index`.

    Returns:
        A :class:`VideoGraph` with ``meta["kind"] == "vidsage"``.
    """
    x = _as_float32(x, "x")
    n = x.shape[0]
    object_source = str(getattr(object_source, "name", object_source))
    if len(object_sets) != n:
        raise ValueError(f"{len(object_sets)} object sets for {n} feature rows")
    visual = lite_graph(x, k=k, tau=tau, mode=mode, device=device, progress=progress,
                        **index_kwargs)
    jei, jw, info = jaccard_edges(object_sets, min_jaccard=min_jaccard,
                                  max_per_node=max_per_node,
                                  max_object_frequency=max_object_frequency,
                                  progress=progress, return_info=True)
    rows = np.concatenate([jei[0].numpy(), visual.edge_index[0].numpy()])
    cols = np.concatenate([jei[1].numpy(), visual.edge_index[1].numpy()])
    w = np.concatenate([alpha * jw.numpy(), beta * visual.edge_weight.numpy()])
    meta = {
        "kind": "vidsage", "k": k, "tau": tau, "alpha": alpha, "beta": beta,
        "object_source": object_source, "mode": mode,
        "min_jaccard": min_jaccard, "max_per_node": max_per_node,
        "max_object_frequency": max_object_frequency,
        "visual_edges": visual.num_undirected_edges,
        "object_edges": int(jei.shape[1]) // 2,
        "stop_objects": len(info["stop_objects"]),
        "empty_object_sets": info["empty_sets"],
    }
    # Both inputs are already symmetric and coalesced; summing the two terms per edge gives
    # alpha*w1 + beta*w2 with the missing term counted as 0.
    g = build_graph(rows, cols, w, n, meta, symmetrize=False, reduce="sum")
    g.meta["both_edges"] = meta["visual_edges"] + meta["object_edges"] - g.num_undirected_edges
    return g


# ---------------------------------------------------------------------------------------------
# Statistics
# ---------------------------------------------------------------------------------------------
def graph_stats(
    graph: VideoGraph,
    labels_csr: sp.spmatrix | None = None,
    node_mask: np.ndarray | None = None,
    seed: int = 0,
) -> dict:
    """Size, degree, connectivity and label homophily of a graph.

    Args:
        graph: the graph.
        labels_csr: optional ``[N, C]`` 0/1 labels. Homophily is computed over the edges
            whose two endpoints both have at least one label (and pass ``node_mask``).
        node_mask: optional bool ``[N]``: nodes whose labels may be used (e.g. train+val, to
            keep test labels out of model selection).
        seed: seed of the random-pair baseline.

    Returns:
        dict with ``num_nodes``, ``num_edges`` (undirected), ``degree_min/mean/median/max``,
        ``degree_histogram`` (``{"bins": [...], "counts": [...]}``, bins are
        ``[lo, hi)`` with power-of-two edges), ``num_components``, ``largest_component``,
        ``isolated_nodes`` and, with labels, ``homophily`` (fraction of labelled edges whose
        endpoints share >= 1 label), ``weighted_homophily`` (the same weighted by
        ``edge_weight``), ``homophily_edges`` (edges counted) and ``homophily_random_pairs``
        (the same fraction for 100,000 uniformly random labelled pairs, for scale).
    """
    from scipy.sparse.csgraph import connected_components

    n = graph.num_nodes
    deg = graph.degree().numpy()
    top = int(deg.max()) if n else 0
    edges = [0, 1, 2]
    while edges[-1] <= top:
        edges.append(edges[-1] * 2)
    counts, _ = np.histogram(deg, bins=edges)
    bins = [f"{lo}" if hi - lo == 1 else f"{lo}-{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:])]
    ncomp, comp = connected_components(graph.to_scipy(), directed=False)
    comp_sizes = np.bincount(comp) if n else np.zeros(0, np.int64)
    out: dict[str, Any] = {
        "num_nodes": n,
        "num_edges": graph.num_undirected_edges,
        "degree_min": int(deg.min()) if n else 0,
        "degree_mean": float(deg.mean()) if n else 0.0,
        "degree_median": float(np.median(deg)) if n else 0.0,
        "degree_max": top,
        "degree_histogram": {"bins": bins, "counts": counts.tolist()},
        "num_components": int(ncomp),
        "largest_component": int(comp_sizes.max()) if n else 0,
        "isolated_nodes": int((deg == 0).sum()),
    }
    if labels_csr is not None:
        y = sp.csr_matrix(labels_csr, dtype=np.float32)
        if y.shape[0] != n:
            raise ValueError(f"labels_csr has {y.shape[0]} rows for a graph of {n} nodes")
        has = np.asarray((y != 0).sum(1)).ravel() > 0
        if node_mask is not None:
            has &= np.asarray(node_mask, dtype=bool)
        r, c = graph.edge_index.numpy()
        w = graph.edge_weight.numpy()
        sel = (r < c) & has[r] & has[c]
        r, c, w = r[sel], c[sel], w[sel]
        share = _share_label(y, r, c)
        out["homophily_edges"] = int(sel.sum())
        out["homophily"] = float(share.mean()) if share.size else float("nan")
        out["weighted_homophily"] = (float((w * share).sum() / w.sum()) if w.sum() > 0
                                     else float("nan"))
        pool = np.flatnonzero(has)
        if pool.size >= 2:
            rng = np.random.default_rng(seed)
            a = rng.choice(pool, 100_000)
            b = rng.choice(pool, 100_000)
            ok = a != b
            out["homophily_random_pairs"] = float(_share_label(y, a[ok], b[ok]).mean())
    return out


def _share_label(y: sp.csr_matrix, r: np.ndarray, c: np.ndarray,
                 block: int = 1 << 20) -> np.ndarray:
    """Whether rows ``r[i]`` and ``c[i]`` of ``y`` share a nonzero column, bool ``[len(r)]``."""
    out = np.zeros(len(r), dtype=bool)
    for s in range(0, len(r), block):
        prod = y[r[s:s + block]].multiply(y[c[s:s + block]])
        out[s:s + block] = np.asarray(prod.sum(1)).ravel() > 0
    return out


def node_homophily(graph: VideoGraph, labels_csr: sp.spmatrix) -> np.ndarray:
    """Per node, the fraction of its labelled neighbours that share at least one label with it.

    Args:
        graph: the graph (``edge_index`` [2, E], both directions stored).
        labels_csr: ``[N, C]`` 0/1 labels.

    Returns:
        float64 ``[M]`` for the M labelled nodes with at least one labelled neighbour (nodes
        without are left out rather than counted as 0 or 1).
    """
    y = sp.csr_matrix(labels_csr, dtype=np.float32)
    if y.shape[0] != graph.num_nodes:
        raise ValueError(f"labels_csr has {y.shape[0]} rows for a graph of {graph.num_nodes} nodes")
    has = np.diff(y.indptr) > 0
    r, c = graph.edge_index.numpy()
    sel = has[r] & has[c] & (r != c)
    r, c = r[sel], c[sel]
    share = _share_label(y, r, c).astype(np.float64)
    total = np.bincount(r, minlength=graph.num_nodes)
    same = np.bincount(r, weights=share, minlength=graph.num_nodes)
    keep = total > 0
    return same[keep] / total[keep]
