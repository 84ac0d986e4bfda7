"""The feature store: video features as one ``[N, D]`` ``.npy`` read through ``np.memmap``.

Training and embedding read the rows they need per batch or block, the way nanoGPT's
``get_batch`` reads ``train.bin``: a 4,000,000 x 1152 float16 store is 9.2 GB on disk and only
the pages touched are in memory (page cache the kernel can drop), so the same trainer serves
14k in-memory arrays, memmap stores of millions of videos and every DDP rank (each rank maps
the same file). An in-memory ``np.ndarray`` is a valid store too.

:class:`StoreWriter` appends rows to a store whose final length is not known in advance (a
stream of TFRecord shards): the ``.npy`` header is written with a fixed size at the start and
rewritten with the real shape at the end, so the data is never copied
(:func:`vidsage_core.data.stream.stream_tfrecords` fills stores from YouTube-8M TFRecords).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import torch

__all__ = ["StoreWriter", "gather_rows", "open_store"]

# Header bytes reserved at the start of a streamed .npy (format 1.0: magic + version + uint16
# length + dict text). 128 holds any 2-D shape up to 10^30 rows and keeps rows 64-byte aligned.
_HEADER_BYTES = 128
_MAGIC = b"\x93NUMPY\x01\x00"


def open_store(path: str | Path) -> np.ndarray:
    """Open a feature store read-only, memory-mapped.

    Args:
        path: a 2-D float16 or float32 ``.npy`` (``np.save`` or :class:`StoreWriter`).

    Returns:
        ``np.memmap``-backed array ``[N, D]``; nothing is read until rows are indexed.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"feature store {path}: no such file")
    x = np.load(path, mmap_mode="r")
    if x.ndim != 2 or x.dtype not in (np.float16, np.float32):
        raise ValueError(f"feature store {path}: expected a 2-D float16/float32 array, got "
                         f"{x.dtype} {x.shape}")
    return x


def gather_rows(x: np.ndarray | torch.Tensor, ids: torch.Tensor | np.ndarray, device: str = "cpu"
                ) -> torch.Tensor:
    """float32 rows ``x[ids]`` on ``device``: the one way the trainer reads features.

    Reads from a memmap go in ascending row order (sequential pages), then are put back in
    ``ids`` order; the values are exactly ``x[ids]`` widened to float32, whatever backs ``x``.

    Args:
        x: ``[N, D]`` float16/float32 array, memmap or CPU tensor.
        ids: long ``[M]`` row ids (repeats allowed).
        device: where the result goes; float16 rows are widened there (half the transfer).

    Returns:
        float32 ``[M, D]``.
    """
    if isinstance(x, torch.Tensor):
        idx_t = torch.as_tensor(ids, dtype=torch.long, device=x.device)
        return x[idx_t].to(device).float()
    idx = ids.cpu().numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids)
    idx = idx.astype(np.int64, copy=False)
    if isinstance(x, np.memmap) or not x.flags.c_contiguous:
        order = np.argsort(idx, kind="stable")
        block = np.empty((len(idx), x.shape[1]), dtype=x.dtype)
        block[order] = x[idx[order]]
    else:
        block = x[idx]
    t = torch.from_numpy(block)
    if str(device).startswith("cuda"):
        return t.to(device, non_blocking=True).float()
    return t.float()


class StoreWriter:
    """Append ``[n_i, D]`` blocks to a ``.npy`` feature store of unknown final length.

    Args:
        path: the ``.npy`` to create (overwritten).
        dim: D.
        dtype: float16 (half the disk and page cache; YouTube-8M's features are 8-bit quantised
            already) or float32.

    Use as a context manager; :meth:`close` writes the final header. A crash leaves a file whose
    header still says 0 rows, so a partial store is never mistaken for a complete one.
    """

    def __init__(self, path: str | Path, dim: int, dtype: np.dtype | str = np.float16) -> None:
        self.path = Path(path)
        self.dim = int(dim)
        self.dtype = np.dtype(dtype)
        if self.dtype not in (np.float16, np.float32):
            raise ValueError(f"StoreWriter: dtype must be float16 or float32, got {self.dtype}")
        self.rows = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._f = open(self.path, "wb")
        self._f.write(self._header(0))
        self._f.flush()  # a reader (or a crash) sees a valid, empty store until close()

    def _header(self, rows: int) -> bytes:
        text = repr({"descr": self.dtype.str, "fortran_order": False, "shape": (rows, self.dim)})
        body_len = _HEADER_BYTES - len(_MAGIC) - 2
        text = text + " " * (body_len - len(text) - 1) + "\n"
        if len(text) != body_len:
            raise ValueError(f"StoreWriter: shape {(rows, self.dim)} does not fit the reserved header")
        return _MAGIC + struct.pack("<H", body_len) + text.encode("latin1")

    def append(self, block: np.ndarray) -> None:
        """Append rows (cast to the store's dtype).

        Args:
            block: ``[n, D]``.
        """
        block = np.asarray(block)
        if block.ndim != 2 or block.shape[1] != self.dim:
            raise ValueError(f"{self.path}: block of shape {block.shape}, store rows have {self.dim} columns")
        self._f.write(np.ascontiguousarray(block, dtype=self.dtype).tobytes())
        self.rows += block.shape[0]

    def close(self) -> Path:
        """Write the final header and close; returns the path."""
        if not self._f.closed:
            self._f.seek(0)
            self._f.write(self._header(self.rows))
            self._f.close()
        return self.path

    def __enter__(self) -> "StoreWriter":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
