"""Embeddings as a product: the portable ``embeddings.npz`` file, its FAISS index, and the
label-sharing retrieval scores of a representation.

``embeddings.npz`` (one per variant and seed of a run, ``RUN/<variant>/seed<s>/``) holds exactly
two arrays, readable with ``numpy.load(path)`` (no pickle, ``allow_pickle=False`` works):

* ``ids``: unicode strings ``[N]`` (dtype ``<U…``), the video ids in the run's video order;
* ``z``: float32 ``[N, d]``, row ``i`` the embedding of ``ids[i]``.

Nearest neighbours are searched with FAISS on L2-normalised rows (inner product = cosine):
an exact ``IndexFlatIP`` up to :attr:`IndexConfig.exact_max` rows, an ``IndexIVFFlat`` above.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import scipy.sparse as sp

from vidsage_core.metrics import retrieval_map_at_k, retrieval_precision_at_k

EMBEDDINGS = "embeddings.npz"
# metrics.json keys of the label-sharing retrieval scores
RETRIEVAL_KEYS = ("retrieval_precision_at_10", "retrieval_map_at_100")


def save_embeddings(path: str | Path, ids: Sequence[str], z: np.ndarray) -> Path:
    """Write ``ids`` (unicode ``[N]``) and ``z`` (float32 ``[N, d]``) to ``path`` (``.npz``).

    Raises:
        ValueError: ``z`` is not 2-d or the counts differ.
    """
    path = Path(path)
    ids = np.asarray([str(i) for i in ids], dtype=str)
    z = np.ascontiguousarray(z, dtype=np.float32)
    if z.ndim != 2 or z.shape[0] != ids.shape[0]:
        raise ValueError(f"{path}: {ids.shape[0]} ids but embeddings of shape {z.shape}")
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez(path, ids=ids, z=z)
    return path


def load_embeddings(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """``(ids [N] str, z float32 [N, d])`` of an ``embeddings.npz`` (no pickle).

    Raises:
        FileNotFoundError, safe_io.UnsafeFileError: missing or not a plain NPZ.
        ValueError: the arrays are missing or malformed.
    """
    from vidsage_core.safe_io import load_npz

    arrays = load_npz(path, "embeddings file")
    if "ids" not in arrays or "z" not in arrays:
        raise ValueError(f"{path}: an embeddings file holds the arrays 'ids' and 'z', found {sorted(arrays)}")
    ids, z = arrays["ids"], arrays["z"]
    if ids.dtype.kind != "U" or ids.ndim != 1 or z.ndim != 2 or z.shape[0] != ids.shape[0]:
        raise ValueError(f"{path}: expected ids [N] strings and z [N, d], got {ids.dtype} {ids.shape} "
                         f"and {z.shape}")
    return ids, z.astype(np.float32, copy=False)


@dataclass(frozen=True)
class IndexConfig:
    """How :class:`EmbeddingIndex` searches."""

    # Exact search up to here: 1M x 256-d float32 is 1 GiB, still one flat index in memory, and
    # exact neighbours need no recall caveat; beyond it an IVF index trades recall for speed.
    exact_max: int = 1_000_000
    nlist: int | None = None  # IVF lists; None: 4 * sqrt(N), the low end of FAISS's guideline
    nprobe: int = 32  # lists visited per query: raise for recall, lower for speed
    train_size: int = 200_000  # rows sampled to train the IVF quantiser (>= 39 * nlist)
    seed: int = 0


def _normalized(x: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)


class EmbeddingIndex:
    """Cosine nearest neighbours over ``z`` through FAISS (exact flat, or IVF above a size).

    Args:
        z: float32 ``[N, d]`` database embeddings (normalised here).
        config: search settings.
    """

    def __init__(self, z: np.ndarray, config: IndexConfig = IndexConfig()) -> None:
        import faiss

        z = _normalized(z)
        if z.ndim != 2 or z.shape[0] == 0:
            raise ValueError(f"need a non-empty [N, d] embedding matrix, got shape {z.shape}")
        n, d = z.shape
        self.size, self.dim, self.config = n, d, config
        if n <= config.exact_max:
            self.kind = "flat-ip"
            self.index = faiss.IndexFlatIP(d)
        else:
            nlist = config.nlist or int(4 * np.sqrt(n))
            self.kind = f"ivf-flat(nlist={nlist},nprobe={config.nprobe})"
            quantizer = faiss.IndexFlatIP(d)
            self.index = faiss.IndexIVFFlat(quantizer, d, nlist, faiss.METRIC_INNER_PRODUCT)
            rng = np.random.default_rng(config.seed)
            sample = z[np.sort(rng.choice(n, size=min(n, config.train_size), replace=False))]
            self.index.train(sample)
            self.index.nprobe = config.nprobe
            self._quantizer = quantizer  # keep it alive: the IVF index only borrows it
        self.index.add(z)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar rows per query.

        Args:
            queries: float ``[Q, d]`` (normalised here).
            k: neighbours per query (at most N).

        Returns:
            cosine float32 ``[Q, k']`` and row indices int64 ``[Q, k']``, best first,
            ``k' = min(k, N)``; an IVF search can return ``-1`` for missing hits.
        """
        q = _normalized(np.atleast_2d(queries))
        if q.shape[1] != self.dim:
            raise ValueError(f"queries have {q.shape[1]} dimensions, the index {self.dim}")
        k = min(int(k), self.size)
        sims, idx = self.index.search(q, k)
        return sims, idx.astype(np.int64)


def neighbours_of(ids: np.ndarray, z: np.ndarray, video_id: str, k: int = 10,
                  config: IndexConfig = IndexConfig()) -> list[tuple[str, float]]:
    """The ``k`` nearest other videos of a known ``video_id`` (cosine of the embeddings).

    Returns:
        ``[(id, cosine), ...]`` best first, the video itself excluded.

    Raises:
        KeyError: ``video_id`` is not among ``ids``.
    """
    where = np.flatnonzero(ids == str(video_id))
    if where.size == 0:
        raise KeyError(f"video id {video_id!r} is not among the {len(ids)} videos of this run")
    sims, idx = EmbeddingIndex(z, config).search(z[where[:1]], k + 1)
    out = [(str(ids[j]), float(s)) for s, j in zip(sims[0], idx[0]) if j >= 0 and j != where[0]]
    return out[:k]


def _relevance(y_query: sp.csr_matrix, y_db: sp.csr_matrix, idx: np.ndarray,
               chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Share-a-label relevance of the hits ``idx`` ``[Q, K]`` and each query's relevant count."""
    q_count = y_query.shape[0]
    rel = np.zeros(idx.shape, dtype=bool)
    num = np.zeros(q_count, dtype=np.int64)
    y_db_t = sp.csr_matrix(y_db.T)
    for s in range(0, q_count, chunk):  # chunks bound the [Q, N] overlap matrix's memory
        overlap = sp.csr_matrix(y_query[s:s + chunk] @ y_db_t)
        overlap.eliminate_zeros()
        num[s:s + chunk] = np.diff(overlap.indptr)
        block = idx[s:s + chunk]
        rows = np.repeat(np.arange(block.shape[0]), block.shape[1])
        cols = np.maximum(block.ravel(), 0)
        hit = np.asarray(overlap[rows, cols]).ravel() > 0
        rel[s:s + chunk] = hit.reshape(block.shape) & (block >= 0)
    return rel, num


def label_retrieval(z_query: np.ndarray, y_query: Any, z_db: np.ndarray, y_db: Any,
                    k_precision: int = 10, k_map: int = 100) -> dict[str, float]:
    """Label-sharing retrieval: queries rank the database by cosine; a hit is relevant when it
    shares at least one label with the query (exact search).

    Args:
        z_query: float ``[Q, d]`` (e.g. test videos); y_query: 0/1 ``[Q, C]`` labels.
        z_db: float ``[N, d]`` (e.g. train+val videos); y_db: 0/1 ``[N, C]``.
        k_precision, k_map: cut-offs.

    Returns:
        ``{"retrieval_precision_at_10": ..., "retrieval_map_at_100": ...}`` (keys follow the
        cut-offs), see :func:`metrics.retrieval_precision_at_k` and :func:`metrics.retrieval_map_at_k`.
    """
    y_query = sp.csr_matrix(y_query, dtype=np.float32)
    y_db = sp.csr_matrix(y_db, dtype=np.float32)
    if y_query.shape[0] != len(z_query) or y_db.shape[0] != len(z_db):
        raise ValueError(f"labels [{y_query.shape[0]}], [{y_db.shape[0]}] do not match embeddings "
                         f"[{len(z_query)}], [{len(z_db)}]")
    k = max(k_precision, k_map)
    index = EmbeddingIndex(z_db, IndexConfig(exact_max=max(len(z_db), 1)))  # scores are exact
    _, idx = index.search(z_query, k)
    rel, num = _relevance(y_query, y_db, idx)
    return {f"retrieval_precision_at_{k_precision}": retrieval_precision_at_k(rel, k_precision),
            f"retrieval_map_at_{k_map}": retrieval_map_at_k(rel, num, k_map)}
