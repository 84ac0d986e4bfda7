"""YouTube-8M TFRecords streamed into on-disk feature stores, one group of shards at a time.

Built on the reader's public API (:func:`vidsage_core.data.read_tfrecords` per group of files):
memory is bounded by one group, features go to :class:`vidsage_core.store.StoreWriter` as they
are read, and every skipped record is counted.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from vidsage_core.data.reader import read_tfrecords, resolve_paths
from vidsage_core.data.splits import hash_bucket
from vidsage_core.data.videoset import SkipReport
from vidsage_core.store import StoreWriter, open_store
from vidsage_core.utils import save_json

__all__ = ["StoreSet", "StreamResult", "stream_tfrecords"]


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
