"""The feature store: video features as one ``[N, D]`` ``.npy`` read through ``np.memmap``.

Training and embedding read the rows they need per batch or block, the way nanoGPT's
``get_batch`` reads ``train.bin``: a 4,000,000 x 1152 float16 store is 9.2 GB on disk and only
the pages touched are in memory (page cache the kernel can drop), so the same trainer serves
14k in-memory arrays, memmap stores of millions of videos and every DDP rank (each rank maps
the same file). An in-memory ``np.ndarray`` is a valid store too.

:class:`StoreWriter` appends rows to a store whose final length is not known in advance (a
stream of TFRecord shards): the ``.npy`` header is written with a fixed size at the start and
rewritten with the real shape at the end, so the data is never copied. :func:`stream_tfrecords`
fills a train+val and a test store from YouTube-8M TFRecords with bounded memory.
"""

from __future__ import annotations

import struct
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

from vidsage_core.data import SkipReport
from vidsage_core.utils import save_json

__all__ = ["StoreSet", "StoreWriter", "StreamResult", "gather_rows", "open_store", "stream_tfrecords"]

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



# ---------------------------------------------------------------------------------------------
# streaming TFRecords into stores
# ---------------------------------------------------------------------------------------------
@dataclass
class StoreSet:
    """One split of a streamed collection: features on disk, ids and labels in memory.

    Attributes:
        x: ``[N, D]`` L2-normalised features, memory-mapped (:func:`open_store`).
        ids: ``[N]`` video ids (unicode).
        labels: float32 0/1 CSR ``[N, num_classes]``.
        num_classes: label vocabulary size.
    """

    x: np.ndarray
    ids: np.ndarray
    labels: sp.csr_matrix
    num_classes: int

    def __len__(self) -> int:
        return len(self.ids)

    def save_meta(self, directory: Path) -> None:
        np.save(directory / "ids.npy", self.ids)
        sp.save_npz(directory / "labels.npz", self.labels)

    @classmethod
    def load(cls, directory: str | Path) -> "StoreSet":
        """Open a split written by :func:`stream_tfrecords` (features memory-mapped)."""
        directory = Path(directory)
        labels = sp.load_npz(directory / "labels.npz").tocsr()
        return cls(open_store(directory / "features.npy"), np.load(directory / "ids.npy"), labels,
                   int(labels.shape[1]))


@dataclass
class StreamResult:
    """What :func:`stream_tfrecords` wrote: the train+val and test stores and what was skipped."""

    trainval: StoreSet
    test: StoreSet
    skipped: SkipReport
    source: str
    split_rule: str


def stream_tfrecords(data: str | Path | list, out_dir: str | Path, modality: str = "rgb+audio",
                     dtype: np.dtype | str = np.float16, files_per_group: int = 8, on_error: str = "skip",
                     level: str = "video", max_videos: int | None = None, progress: bool = True,
                     test_bucket: int = 0, num_buckets: int = 5) -> StreamResult:
    """Read YouTube-8M TFRecords group by group into two feature stores (train+val, test).

    Memory is bounded by one group of ``files_per_group`` shards (read with
    :func:`~vidsage_core.data.read_tfrecords`, the package's reader) plus the ids and labels;
    features go to disk as they are read, L2-normalised (``VideoSet.features``). A video goes to
    the test store iff ``md5(id) % num_buckets == test_bucket`` (``data.split_by_id``'s rule, so
    the split is the one ``vidsage run`` uses on small data). Bad records are skipped and counted
    (``on_error="skip"``), as are repeated ids (the first is kept).

    Args:
        data: TFRecord glob, directory, file or list (``data.resolve_paths``).
        out_dir: writes ``trainval/`` and ``test/`` (``features.npy``, ``ids.npy``, ``labels.npz``)
            and ``stream.json`` (counts and skips).
        modality: "rgb", "audio" or "rgb+audio".
        dtype: store dtype (float16: half the disk and page cache).
        files_per_group: shards read at once (YouTube-8M video-level shards: ~1,000 videos each).
        on_error: "skip" (count and go on) or "raise".
        level: "video" or "frame" (frame-level videos are mean-pooled by the reader).
        max_videos: stop after this many videos (file order); None: all.
        progress: tqdm over groups, with videos and skips so far.
        test_bucket, num_buckets: the hash split.

    Returns:
        :class:`StreamResult`.
    """
    from tqdm.auto import tqdm

    from vidsage_core.data import hash_bucket, read_tfrecords, resolve_paths

    files = resolve_paths(data)
    out_dir = Path(out_dir)
    groups = [files[i:i + files_per_group] for i in range(0, len(files), files_per_group)]
    writers: dict[str, StoreWriter] = {}
    ids: dict[str, list[np.ndarray]] = {"trainval": [], "test": []}
    labels: dict[str, list[sp.csr_matrix]] = {"trainval": [], "test": []}
    report = SkipReport()
    seen: set[str] = set()
    num_classes = None
    total = 0
    bar = tqdm(groups, desc="streaming TFRecords into the store", unit="group", disable=not progress)
    try:
        for group in bar:
            with warnings.catch_warnings():  # one summary for the whole stream, below
                warnings.filterwarnings("ignore", message="read_tfrecords skipped bad records")
                vs = read_tfrecords(group, level=level, on_error=on_error, progress=False, rgb_dim=None,
                                    audio_dim=None)
            _merge_report(report, vs.skipped)
            keep = np.ones(len(vs), bool)
            for i, vid in enumerate(vs.ids.tolist()):
                if vid in seen:
                    keep[i] = False
                    report.add(str(group[0].parent), -1, "duplicate id", f"{vid} seen before; first kept")
                seen.add(vid)
            if max_videos is not None:
                keep &= np.cumsum(keep) <= max_videos - total
            if not keep.all():
                vs = vs.subset(np.flatnonzero(keep))
            if num_classes is None:
                num_classes = vs.num_classes
            elif vs.num_classes != num_classes:
                raise ValueError(f"{group[0]}: labels have {vs.num_classes} classes, earlier shards {num_classes}; "
                                 "2017 and 2018 files cannot be mixed")
            x = vs.features(modality, normalize=True)
            is_test = hash_bucket(vs.ids, num_buckets) == test_bucket
            for part, rows in (("trainval", np.flatnonzero(~is_test)), ("test", np.flatnonzero(is_test))):
                if part not in writers:
                    writers[part] = StoreWriter(out_dir / part / "features.npy", x.shape[1], dtype)
                writers[part].append(x[rows])
                ids[part].append(vs.ids[rows])
                labels[part].append(vs.labels[rows])
            total += len(vs)
            bar.set_postfix(videos=total, skipped=len(report))
            if max_videos is not None and total >= max_videos:
                break
    finally:
        bar.close()
        for w in writers.values():
            w.close()
    if total == 0:
        raise ValueError(f"{data}: no readable videos ({len(report)} records skipped)")
    parts = {}
    for part in ("trainval", "test"):
        directory = out_dir / part
        s = StoreSet(open_store(directory / "features.npy"), np.concatenate(ids[part]),
                     sp.vstack(labels[part]).tocsr(), int(num_classes))
        s.save_meta(directory)
        parts[part] = s
    rule = f"md5(id) % {num_buckets}: bucket {test_bucket} test, the rest train+val"
    if len(report):
        warnings.warn(f"stream_tfrecords skipped records:\n{report.summary()}", stacklevel=2)
    save_json({"videos": total, "trainval": len(parts["trainval"]), "test": len(parts["test"]),
               "files": len(files), "dtype": str(np.dtype(dtype)), "modality": modality, "split_rule": rule,
               "skipped": report.counts(), "skip_info": report.info, "records_read": report.records_read},
              out_dir / "stream.json")
    return StreamResult(parts["trainval"], parts["test"], report, f"yt8m {level}-level TFRecords: {data}", rule)


def _merge_report(total: SkipReport, part: SkipReport | None) -> None:
    if part is None:
        return
    total.records.extend(part.records)
    for k, v in part.info.items():
        total.note(k, v)
    total.files_read += part.files_read
    total.records_read += part.records_read
