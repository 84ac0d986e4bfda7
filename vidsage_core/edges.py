"""Edge lists to PyG-style edge tensors: drop self loops, symmetrise, merge duplicates.

The one place where candidate pairs (kNN, Jaccard, inductive attachment) become the sorted,
coalesced ``edge_index`` / ``edge_weight`` every graph in the package holds; it sits below the
kNN, Jaccard and graph modules so each can import it downward.
"""

from __future__ import annotations

import numpy as np
import torch


def coalesce_edges(
    rows: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray | float,
    num_nodes: int,
    symmetrize: bool = True,
    reduce: str = "max",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Sorted, duplicate-free, self-loop-free edges from (possibly one-directional) lists.

    Args:
        rows, cols: int ``[M]`` endpoints.
        weights: float ``[M]`` or a scalar applied to every edge.
        num_nodes: ``N``.
        symmetrize: add the reverse of every edge (the union of both directions).
        reduce: how duplicate ``(u, v)`` entries combine: "max", "sum" or "min".

    Returns:
        edge_index long ``[2, E]`` sorted by ``(row, col)``, edge_weight float32 ``[E]``.
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
    return edge_index.long().contiguous(), torch.from_numpy(uw)
