"""Video graphs: the graph container and the paper's two graphs (LiteVidSage, VidSage).

Paper §3.3. Every video is a node. LiteVidSage connects ``u`` and ``v`` when
``g(u, v) = 1 - ||x_u - x_v|| >= tau`` on L2-normalised features; VidSage adds object edges
weighted by the Jaccard index of the videos' object sets and mixes the two,
``w = alpha * w1 + beta * w2``.

Nothing here forms an all-pairs ``N x N`` matrix: neighbours come from
:func:`vidsage_core.knn.knn` (exact, FAISS IVF / HNSW, or IVF as one matrix product per list) and
object pairs from :func:`vidsage_core.jaccard.jaccard_edges` (an inverted index), so graphs scale
to millions of videos; :mod:`vidsage_core.graph_stats` describes them.

Graphs follow PyTorch Geometric conventions: ``edge_index`` is a long ``[2, E]`` tensor holding
both directions of every undirected edge, no self loops, sorted by ``(row, col)``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp
import torch

from vidsage_core.edges import coalesce_edges
from vidsage_core.jaccard import (DEFAULT_MAX_OBJECT_FREQUENCY, DEFAULT_MAX_PER_NODE, DEFAULT_MIN_JACCARD,
                                  jaccard_edges)
from vidsage_core.knn import UNIT_NORM_TOL, as_array, as_float32, knn

__all__ = [
    "DEFAULT_K",
    "DEFAULT_TAU",
    "VideoGraph",
    "build_graph",
    "lite_graph",
    "vidsage_graph",
]

# Defaults, chosen by measurement (see the docstring of lite_graph for the numbers and the script
# that produced them). The search defaults live in vidsage_core.knn, the Jaccard ones in
# vidsage_core.jaccard.
DEFAULT_K = 25  # LiteVidSage neighbour cap per node; see lite_graph for the measurement
DEFAULT_TAU = -0.35  # LiteVidSage threshold on g = 1 - ||x_u - x_v|| (g in [-1, 1]); see lite_graph


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
    edge_index, edge_weight = coalesce_edges(rows, cols, weights, num_nodes, symmetrize, reduce)
    return VideoGraph(edge_index, edge_weight, int(num_nodes), dict(meta or {}))


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
        x: L2-normalised ``[N, D]`` features (``VideoSet.features()``); with ``mode="ivf-gemm"``
            a float16/float32 memmap store is read in place.
        k: neighbour cap per node.
        tau: threshold on ``g``; ``-1`` keeps every one of the ``k`` neighbours.
        mode: "exact", "ivf", "hnsw" or "ivf-gemm" neighbour search.
        device: "auto", "cpu" or "cuda".
        symmetrize: "union" (``u ~ v`` if either lists the other, the default) or "mutual"
            (both must).
        batch_size: query block size for the kNN search.
        progress: tqdm bar.
        **index_kwargs: passed to :func:`vidsage_core.knn.build_index`.

    Returns:
        A :class:`VideoGraph` with ``meta["kind"] == "lite"``.
    """
    # ivf-gemm reads a (float16) memmap store list by list: no float32 copy of the features.
    x = as_array(x, "x") if mode == "ivf-gemm" else as_float32(x, "x")
    n = x.shape[0]
    for s in range(0, n, 65_536):  # blocked: bounded temporaries on a memmap
        norms = np.linalg.norm(np.asarray(x[s:s + 65_536], dtype=np.float32), axis=1)
        # All-zero rows are allowed: VideoSet.features(normalize=True) leaves them zero.
        if np.any((np.abs(norms - 1.0) > UNIT_NORM_TOL) & (norms > 0)):
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
        **index_kwargs: passed to :func:`vidsage_core.knn.build_index`.

    Returns:
        A :class:`VideoGraph` with ``meta["kind"] == "vidsage"``.
    """
    x = as_float32(x, "x")
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
