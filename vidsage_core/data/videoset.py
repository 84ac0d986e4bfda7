"""The in-memory (or memory-mapped) video collection every later step works on, and its store.

A :class:`VideoSet` is saved once, right after the TFRecords are read, as a *VidSage store*: a
directory of ``.npy`` arrays (memory-mapped on load), the labels as a CSR ``.npz``, and a JSON
``meta.json`` (num_classes, provenance, the skip report, object vocabulary). Later steps load the
store and never parse TFRecords again.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from vidsage_core.utils import load_json, save_json

STORE_FORMAT = "vidsage-videoset"
STORE_VERSION = 1
MODALITIES = ("rgb", "audio", "rgb+audio")


@dataclass
class SkipReport:
    """What a reader dropped, and why; nothing read is lost without a line here.

    Attributes:
        records: one dict per dropped record (or unreadable tail of a file):
            ``{"file": str, "index": int, "reason": str, "offset": int | None, "detail": str}``.
        info: counts of notable but valid things (``"unlabelled"`` videos, ``"empty_files"``).
        files_read: number of files opened.
        records_read: records found in the files (kept + dropped; an unframeable tail counts once).
    """

    records: list[dict] = field(default_factory=list)
    info: dict[str, int] = field(default_factory=dict)
    files_read: int = 0
    records_read: int = 0

    def add(self, file: str, index: int, reason: str, detail: str = "", offset: int | None = None) -> None:
        self.records.append({"file": str(file), "index": int(index), "reason": reason, "offset": offset,
                             "detail": detail})

    def note(self, key: str, count: int = 1) -> None:
        self.info[key] = self.info.get(key, 0) + count

    def counts(self) -> dict[str, int]:
        """Reason -> number of dropped records, most frequent first."""
        return dict(Counter(r["reason"] for r in self.records).most_common())

    def __len__(self) -> int:
        return len(self.records)

    def summary(self) -> str:
        """Human-readable summary: totals, counts per reason, the first few examples, info notes."""
        lines = [f"read {self.records_read} records from {self.files_read} files; skipped {len(self.records)}"]
        for reason, n in self.counts().items():
            lines.append(f"  {reason}: {n}")
        for r in self.records[:5]:
            where = f"{r['file']} record {r['index']}"
            if r.get("offset") is not None:
                where += f" @ byte {r['offset']}"
            lines.append(f"    e.g. {where}: {r['reason']}" + (f" ({r['detail']})" if r.get("detail") else ""))
        if len(self.records) > 5:
            lines.append(f"    ... and {len(self.records) - 5} more (SkipReport.records)")
        for key, n in sorted(self.info.items()):
            lines.append(f"  info: {key}: {n}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"records": self.records, "info": self.info, "files_read": self.files_read,
                "records_read": self.records_read, "counts": self.counts()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "SkipReport":
        return cls(records=list(d.get("records", [])), info=dict(d.get("info", {})),
                   files_read=int(d.get("files_read", 0)), records_read=int(d.get("records_read", 0)))


@dataclass
class VideoSet:
    """A set of videos with video-level features, labels and optional frames/objects.

    Attributes:
        ids: ``[N]`` numpy unicode video ids (unique).
        rgb: float ``[N, 1024 * B]`` visual features (float32; float16 allowed for very large
            synthetic sets). ``B`` is the number of pooling blocks (see ``pooling``).
        audio: float ``[N, 128 * B]`` audio features, same blocks.
        labels: ``scipy.sparse.csr_matrix`` float32 ``[N, num_classes]`` of 0/1.
        num_classes: label vocabulary size (3862 for YouTube-8M 2018, 4716 for 2017).
        source: provenance: the files/glob read, or ``"synthetic(...)"``.
        synthetic: True for generated data.
        skipped: what the reader dropped (``None`` when not read from files).
        objects: per-video object/concept sets, when known.
        frames: optional float16 ``[N, T, 1152]`` dequantised frames (rgb‖audio), zero-padded;
            ``T`` is the longest kept video (at most the reader's ``max_frames``).
        num_frames: int32 ``[N]`` valid frames per row of ``frames``.
        pooling: how frame features became video features, as ``+``-joined blocks in column
            order: ``"mean"`` (video-level files are always this), ``"std"``, ``"top<k>"`` (block
            ``j`` of a top-k block holds each dimension's ``j``-th largest frame value), e.g.
            ``"mean+std"`` makes rgb ``[N, 2048]`` and audio ``[N, 256]``.
        topics: int32 ``[N]`` latent topic of each synthetic video (``None`` for real data).
    """

    ids: np.ndarray
    rgb: np.ndarray
    audio: np.ndarray
    labels: sp.csr_matrix
    num_classes: int = 3862
    source: str = ""
    synthetic: bool = False
    skipped: SkipReport | None = None
    objects: list[frozenset[str]] | None = None
    frames: np.ndarray | None = None
    num_frames: np.ndarray | None = None
    pooling: str = "mean"
    topics: np.ndarray | None = None

    def __post_init__(self) -> None:
        n = len(self.ids)
        for name in ("rgb", "audio"):
            a = getattr(self, name)
            if a.ndim != 2 or a.shape[0] != n:
                raise ValueError(f"VideoSet.{name} has shape {a.shape}, expected [{n}, D]")
        if self.labels.shape != (n, self.num_classes):
            raise ValueError(f"VideoSet.labels has shape {self.labels.shape}, expected ({n}, {self.num_classes})")
        if self.objects is not None and len(self.objects) != n:
            raise ValueError(f"VideoSet.objects has {len(self.objects)} entries for {n} videos")
        if (self.frames is None) != (self.num_frames is None):
            raise ValueError("VideoSet.frames and num_frames must be given together")
        if self.frames is not None and (self.frames.shape[0] != n or len(self.num_frames) != n):
            raise ValueError(f"VideoSet.frames has {self.frames.shape[0]} rows for {n} videos")
        if self.topics is not None and len(self.topics) != n:
            raise ValueError(f"VideoSet.topics has {len(self.topics)} entries for {n} videos")

    def __len__(self) -> int:
        return len(self.ids)

    def __repr__(self) -> str:
        kind = "synthetic " if self.synthetic else ""
        return (f"VideoSet({kind}{len(self)} videos, rgb {list(self.rgb.shape)}, audio {list(self.audio.shape)}, "
                f"{self.num_classes} classes, pooling={self.pooling!r}, source={self.source!r})")

    def features(self, modality: str = "rgb+audio", normalize: bool = True) -> np.ndarray:
        """Video-level input features (the paper's f_v, §3.2: averaged frames, then normalised).

        Args:
            modality: ``"rgb"``, ``"audio"`` or ``"rgb+audio"`` (concatenated in that order).
            normalize: L2-normalise each row *after* concatenation (all-zero rows stay zero).

        Returns:
            float32 ``[N, D]`` (D = 1152 for ``"rgb+audio"`` with mean pooling), a new array.
        """
        if modality not in MODALITIES:
            raise ValueError(f"modality must be one of {MODALITIES}, got {modality!r}")
        parts = {"rgb": [self.rgb], "audio": [self.audio], "rgb+audio": [self.rgb, self.audio]}[modality]
        dim = sum(p.shape[1] for p in parts)
        out = np.empty((len(self), dim), np.float32)
        # Chunked so that float16 / memory-mapped inputs never need a second full-size temporary.
        step = max(1, (1 << 24) // max(dim, 1))
        for s in range(0, len(self), step):
            block = out[s : s + step]
            c = 0
            for p in parts:
                block[:, c : c + p.shape[1]] = p[s : s + step]
                c += p.shape[1]
            if normalize:
                norms = np.sqrt(np.einsum("ij,ij->i", block, block, dtype=np.float64)).astype(np.float32)
                norms[norms == 0] = 1.0
                block /= norms[:, None]
        return out

    def subset(self, index: np.ndarray | slice | list[int]) -> "VideoSet":
        """The videos at ``index`` (int indices, a boolean mask or a slice), in that order."""
        if isinstance(index, slice):
            rows = np.arange(len(self))[index]
        else:
            rows = np.asarray(index)
            if rows.dtype == bool:
                if rows.shape != (len(self),):
                    raise ValueError(f"boolean index of shape {rows.shape} for {len(self)} videos")
                rows = np.flatnonzero(rows)
            rows = rows.astype(np.int64, copy=False)
        return VideoSet(
            ids=np.asarray(self.ids[rows]),
            rgb=np.asarray(self.rgb[rows]),
            audio=np.asarray(self.audio[rows]),
            labels=self.labels[rows],
            num_classes=self.num_classes,
            source=self.source,
            synthetic=self.synthetic,
            skipped=self.skipped,
            objects=None if self.objects is None else [self.objects[i] for i in rows.tolist()],
            frames=None if self.frames is None else np.asarray(self.frames[rows]),
            num_frames=None if self.num_frames is None else np.asarray(self.num_frames[rows]),
            pooling=self.pooling,
            topics=None if self.topics is None else np.asarray(self.topics[rows]),
        )

    # ------------------------------------------------------------------------- the VidSage store

    def save(self, directory: str | Path) -> Path:
        """Write the VidSage store: ``{ids,rgb,audio[,frames,num_frames,topics]}.npy``,
        ``labels.npz`` (CSR), ``objects.npz`` (CSR over the object vocabulary) and ``meta.json``.

        ``meta.json`` is written last, so a directory with it is complete.

        Args:
            directory: created if missing; existing store files are replaced.

        Returns:
            The directory.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "meta.json").unlink(missing_ok=True)  # incomplete until rewritten
        np.save(directory / "ids.npy", np.asarray(self.ids, dtype=str))
        np.save(directory / "rgb.npy", np.asarray(self.rgb))
        np.save(directory / "audio.npy", np.asarray(self.audio))
        sp.save_npz(directory / "labels.npz", sp.csr_matrix(self.labels, dtype=np.float32), compressed=False)
        arrays = []
        for name in ("frames", "num_frames", "topics"):
            value = getattr(self, name)
            path = directory / f"{name}.npy"
            if value is None:
                path.unlink(missing_ok=True)
            else:
                np.save(path, np.asarray(value))
                arrays.append(name)
        objects_meta = None
        if self.objects is not None:
            vocab = sorted(set().union(*self.objects)) if self.objects else []
            code = {o: i for i, o in enumerate(vocab)}
            indptr = np.zeros(len(self.objects) + 1, np.int64)
            indptr[1:] = np.cumsum([len(s) for s in self.objects])
            indices = np.fromiter((code[o] for s in self.objects for o in sorted(s)), np.int32, int(indptr[-1]))
            np.savez(directory / "objects.npz", indptr=indptr, indices=indices)
            objects_meta = {"file": "objects.npz", "vocabulary": vocab}
        else:
            (directory / "objects.npz").unlink(missing_ok=True)
        meta = {
            "format": STORE_FORMAT,
            "version": STORE_VERSION,
            "num_videos": len(self),
            "num_classes": int(self.num_classes),
            "source": self.source,
            "synthetic": bool(self.synthetic),
            "pooling": self.pooling,
            "dims": {"rgb": int(self.rgb.shape[1]), "audio": int(self.audio.shape[1])},
            "dtype": str(np.asarray(self.rgb[:0]).dtype),
            "arrays": arrays,
            "skipped": None if self.skipped is None else self.skipped.to_dict(),
            "objects": objects_meta,
        }
        save_json(meta, directory / "meta.json")
        return directory

    @classmethod
    def load(cls, directory: str | Path, mmap: bool = True) -> "VideoSet":
        """Load a store written by :meth:`save`.

        Args:
            directory: the store directory.
            mmap: memory-map the ``.npy`` arrays read-only (``np.load(mmap_mode="r")``) instead of
                reading them into memory.

        Returns:
            The VideoSet (labels and objects are always read into memory).
        """
        directory = Path(directory)
        meta_path = directory / "meta.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{directory} is not a complete VidSage store (no meta.json)")
        meta = load_json(meta_path)
        if meta.get("format") != STORE_FORMAT or meta.get("version") != STORE_VERSION:
            raise ValueError(f"{meta_path}: unsupported store format {meta.get('format')!r} v{meta.get('version')}")
        mode = "r" if mmap else None

        def arr(name: str) -> np.ndarray:
            return np.load(directory / f"{name}.npy", mmap_mode=mode, allow_pickle=False)

        objects = None
        if meta.get("objects"):
            vocab = meta["objects"]["vocabulary"]
            with np.load(directory / meta["objects"]["file"]) as z:
                indptr, indices = z["indptr"], z["indices"]
            flat = [vocab[i] for i in indices.tolist()]
            bounds = indptr.tolist()
            objects = [frozenset(flat[a:b]) for a, b in zip(bounds[:-1], bounds[1:])]
        extra = {name: arr(name) for name in meta.get("arrays", [])}
        labels = sp.load_npz(directory / "labels.npz").tocsr().astype(np.float32)
        return cls(
            ids=np.array(arr("ids")),  # small: read into memory (string ops on a memmap are slow)
            rgb=arr("rgb"),
            audio=arr("audio"),
            labels=labels,
            num_classes=int(meta["num_classes"]),
            source=meta["source"],
            synthetic=bool(meta["synthetic"]),
            skipped=None if meta.get("skipped") is None else SkipReport.from_dict(meta["skipped"]),
            objects=objects,
            frames=extra.get("frames"),
            num_frames=extra.get("num_frames"),
            pooling=meta.get("pooling", "mean"),
            topics=extra.get("topics"),
        )


def labels_to_csr(label_lists: list[list[int]] | list[np.ndarray], num_classes: int) -> sp.csr_matrix:
    """CSR float32 ``[N, num_classes]`` 0/1 matrix from per-video label index lists (duplicates merged)."""
    counts = np.fromiter((len(x) for x in label_lists), np.int64, len(label_lists))
    values = np.fromiter((int(v) for x in label_lists for v in x), np.int64, int(counts.sum()))
    return csr_from_counts(counts, values, num_classes)


def csr_from_counts(counts: np.ndarray, values: np.ndarray, num_classes: int) -> sp.csr_matrix:
    """CSR float32 0/1 ``[len(counts), num_classes]``; row i holds the next ``counts[i]`` of ``values``."""
    n = len(counts)
    indptr = np.zeros(n + 1, np.int64)
    np.cumsum(counts, out=indptr[1:])
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(f"label out of range [0, {num_classes})")
    m = sp.csr_matrix((np.ones(values.size, np.float32), values.astype(np.int64), indptr), shape=(n, num_classes))
    m.sum_duplicates()  # sorts indices; a label listed twice sums to 2, so reset every value to 1
    m.data[:] = 1.0
    return m
