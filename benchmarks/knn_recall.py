"""Recall@k of an approximate neighbour search against exact search (benchmarks and tests only)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from vidsage_core.knn import KnnIndex, as_float32, build_index, knn


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
    x = as_float32(x, "x")
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
