"""Graph statistics: size, degrees, connectivity and label homophily of a :class:`VideoGraph`."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

from vidsage_core.graph import VideoGraph

__all__ = ["graph_stats", "node_homophily"]


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
