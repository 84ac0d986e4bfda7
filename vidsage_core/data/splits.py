"""Deterministic id-hash splits and label-frequency filters.

Splits are a pure function of the video id (``md5(id) mod num_buckets``), so a video lands in the
same split whatever else is read, in whatever order.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp


def hash_bucket(ids: Iterable[str], num_buckets: int = 5) -> np.ndarray:
    """Bucket of each id: ``int(md5(id.encode()).hexdigest(), 16) % num_buckets``.

    Args:
        ids: ``[N]`` video ids (str).
        num_buckets: number of buckets (>= 1).

    Returns:
        int64 ``[N]`` bucket indices in ``[0, num_buckets)``.
    """
    if num_buckets < 1:
        raise ValueError(f"num_buckets must be >= 1, got {num_buckets}")
    md5 = hashlib.md5
    # int.from_bytes(digest) equals int(hexdigest, 16) and skips the hex round trip.
    values = [int.from_bytes(md5(str(i).encode("utf-8")).digest(), "big") % num_buckets for i in ids]
    return np.array(values, dtype=np.int64)


@dataclass(frozen=True)
class Split:
    """Row indices (int64, ascending) of the train, validation and test videos."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    @property
    def train_val(self) -> np.ndarray:
        """Train and validation rows together (the brief's 11,181-video train set on the shared data)."""
        return np.sort(np.concatenate([self.train, self.val]))

    def sizes(self) -> dict[str, int]:
        return {"train": len(self.train), "val": len(self.val), "test": len(self.test)}


def split_by_id(ids: Iterable[str], num_buckets: int = 5, test_bucket: int = 0, val_bucket: int | None = 1) -> Split:
    """Split videos by the hash bucket of their id.

    Args:
        ids: ``[N]`` video ids.
        num_buckets: buckets (5 -> 20 % each).
        test_bucket: bucket that is the test set.
        val_bucket: bucket that is the validation set (``None``: no validation set).

    Returns:
        :class:`Split` of row indices; every row is in exactly one part.
    """
    if not 0 <= test_bucket < num_buckets:
        raise ValueError(f"test_bucket {test_bucket} not in [0, {num_buckets})")
    if val_bucket is not None and (not 0 <= val_bucket < num_buckets or val_bucket == test_bucket):
        raise ValueError(f"val_bucket {val_bucket} must be in [0, {num_buckets}) and differ from test_bucket")
    bucket = hash_bucket(ids, num_buckets)
    test = np.flatnonzero(bucket == test_bucket)
    val = np.flatnonzero(bucket == val_bucket) if val_bucket is not None else np.zeros(0, np.int64)
    train = np.flatnonzero((bucket != test_bucket) & (bucket != (val_bucket if val_bucket is not None else -1)))
    return Split(train=train.astype(np.int64), val=val.astype(np.int64), test=test.astype(np.int64))


def classes_with_min_positives(labels_csr: sp.spmatrix, rows: np.ndarray | None, min_positives: int) -> np.ndarray:
    """Classes with at least ``min_positives`` positive videos among ``rows``.

    Args:
        labels_csr: ``[N, C]`` 0/1 labels.
        rows: row indices (or a boolean mask) to count over; ``None`` for all rows.
        min_positives: threshold (>= 0).

    Returns:
        int64 ``[K]`` ascending class indices.
    """
    m = sp.csr_matrix(labels_csr)
    if rows is not None:
        m = m[np.asarray(rows)]
    counts = np.asarray((m != 0).sum(axis=0)).ravel()
    return np.flatnonzero(counts >= min_positives).astype(np.int64)
