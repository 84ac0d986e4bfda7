"""Read YouTube-8M TFRecords (video- or frame-level) into a :class:`VideoSet` with TensorFlow.

The happy path is TensorFlow's: ``tf.data.TFRecordDataset`` reads the files (checking the CRCs),
``tf.io.parse_example`` (video level) or ``tf.io.parse_sequence_example`` (frame level) decodes
batches of records, and the features arrive as float32 arrays bit-identical to the serialized ones.
At video level all files are one stream of records, parsed ``VIDEO_BATCH`` at a time across file
boundaries (as a bare tf.data pipeline would); each record's length places it in its file, since the
records of an intact file tile it. Batches are parsed in parallel (``num_parallel_reads``), in order.

Where TensorFlow reports a damaged file (``DataLossError``: a CRC or a truncation;
``InvalidArgumentError``: a record it cannot parse as asked) or a parsed record does not fit the
schema (no id, a feature of another width), the stream stops at the file it was in; the files from
there on are read file by file, and a file that fails alone is read again record by record: the
framing of :mod:`.tfrecord` localises a damaged record and reads on past it, and
``tf.train.Example.FromString`` / ``tf.train.SequenceExample.FromString`` decode each intact
record, so the error names the file, the record and what is wrong with it, and skip mode keeps
every good record. Nothing is dropped silently (no ``ignore_errors``).

Every bad record is either raised (``on_error="raise"``) or skipped and listed in
:attr:`VideoSet.skipped` (``on_error="skip"``): the checks that need decoded values
(:func:`_validate`) run on whole files (one or several at a time), and errors are reported in file
and record order.
"""

from __future__ import annotations

import bisect
import glob as globlib
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vidsage_core.data.tfrecord import (HEADER_BYTES, FOOTER_BYTES, FramingError, TFRecordError, frame_records,
                                      iter_frames, tensorflow)
from vidsage_core.data.videoset import SkipReport, VideoSet, csr_from_counts

RGB_DIM = 1024  # Inception (PCA-reduced) frame feature size
AUDIO_DIM = 128  # VGGish audio feature size
# The id feature's name decides the release, and so the label vocabulary.
NUM_CLASSES_BY_ID_KEY = {"id": 3862, "video_id": 4716}  # 2018 (v2/v3), 2017 (v1)

# Quantisation of YouTube-8M frame features (youtube-8m utils.Dequantize with max 2, min -2).
QUANT_MIN, QUANT_MAX = -2.0, 2.0
QUANT_SCALE = (QUANT_MAX - QUANT_MIN) / 255.0
QUANT_BIAS = (QUANT_MAX - QUANT_MIN) / 512.0 + QUANT_MIN

# Reasons a record is dropped (besides the framing ones in .tfrecord).
NOT_EXAMPLE = "not_example"  # bytes are not a (Sequence)Example
MISSING_FEATURE = "missing_feature"  # no id / mean_rgb / mean_audio / rgb / audio
WRONG_TYPE = "wrong_type"  # e.g. mean_rgb stored as int64_list
WRONG_LENGTH = "wrong_length"  # e.g. mean_rgb with 1000 floats, a 1000-byte rgb frame
NON_FINITE = "non_finite"  # NaN or inf in a feature
BAD_ID = "bad_id"  # empty or non-UTF-8 id
DUPLICATE_ID = "duplicate_id"  # id already read (this or an earlier file); the first is kept
LABEL_OUT_OF_RANGE = "label_out_of_range"  # label < 0 or >= num_classes
NO_LABELS = "no_labels"  # only an error with require_labels=True; otherwise info "unlabelled"
NO_FRAMES = "no_frames"  # a frame-level record with zero frames

LEVELS = ("video", "frame")
ON_ERROR = ("raise", "skip")


class _RecordError(Exception):
    def __init__(self, reason: str, detail: str):
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def dequantize(q: np.ndarray) -> np.ndarray:
    """YouTube-8M dequantisation ``q * 4/255 + (4/512 - 2)`` of uint8 features, as float32."""
    return (np.asarray(q, np.float32) * np.float32(QUANT_SCALE) + np.float32(QUANT_BIAS)).astype(np.float32)


def quantize(x: np.ndarray) -> np.ndarray:
    """Inverse of :func:`dequantize` to the nearest level, clipped to [0, 255] (uint8)."""
    q = np.rint((np.asarray(x, np.float64) - QUANT_BIAS) / QUANT_SCALE)
    return np.clip(q, 0, 255).astype(np.uint8)


def resolve_paths(paths_or_glob: str | os.PathLike | Sequence[str | os.PathLike]) -> list[Path]:
    """Expand a glob, a directory (its ``*.tfrecord``), a file, or a list of any of these.

    Raises:
        FileNotFoundError: naming the pattern, directory or file that matched nothing.
    """
    if isinstance(paths_or_glob, (str, os.PathLike)):
        items = [paths_or_glob]
    else:
        items = list(paths_or_glob)
        if not items:
            raise FileNotFoundError("no TFRecord paths given (empty list)")
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            found = sorted(p.glob("*.tfrecord"))
            if not found:
                raise FileNotFoundError(f"directory {str(p)!r} holds no *.tfrecord files")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        elif globlib.has_magic(str(item)):
            found = sorted(Path(f) for f in globlib.glob(str(item)) if Path(f).is_file())
            if not found:
                raise FileNotFoundError(f"glob pattern {str(item)!r} matched no files")
            out.extend(found)
        else:
            raise FileNotFoundError(f"no such TFRecord file or directory: {str(item)!r}")
    return out


def parse_pooling(pooling: str, top_k: int = 5) -> list[tuple[str, int]]:
    """Pooling spec -> blocks: ``"mean+std+topk"`` -> ``[("mean", 1), ("std", 1), ("top", 5)]``.

    Components: ``mean``, ``std``, ``topk`` (``k = top_k``) or ``top<k>`` (e.g. ``top5``).
    """
    blocks: list[tuple[str, int]] = []
    for part in pooling.split("+"):
        part = part.strip()
        if part in ("mean", "std"):
            blocks.append((part, 1))
        elif part == "topk":
            blocks.append(("top", int(top_k)))
        elif part.startswith("top") and part[3:].isdigit() and int(part[3:]) > 0:
            blocks.append(("top", int(part[3:])))
        else:
            raise ValueError(f"unknown pooling component {part!r} in {pooling!r}; use mean, std, topk or top<k>")
    if top_k < 1:
        raise ValueError(f"top_k must be >= 1, got {top_k}")
    return blocks


def pooling_name(blocks: list[tuple[str, int]]) -> str:
    """Canonical name of parsed pooling blocks (``topk`` spelled with its k, e.g. ``mean+top5``)."""
    return "+".join(name if name != "top" else f"top{k}" for name, k in blocks)


def pool_frames(q: np.ndarray, blocks: list[tuple[str, int]]) -> np.ndarray:
    """Aggregate quantised frames to one video-level vector (the paper's §3.2 averaging and kin).

    Args:
        q: uint8 ``[F, D]`` quantised frames (F >= 1).
        blocks: from :func:`parse_pooling`.

    Returns:
        float32 ``[D * B]``: the dequantised blocks side by side; ``mean`` is the frame mean,
        ``std`` the population standard deviation over frames, ``top<k>`` gives ``k`` blocks,
        block ``j`` holding each dimension's ``j``-th largest value (videos with fewer than
        ``k`` frames repeat their smallest value).
    """
    frames = q.shape[0]
    out = []
    mean64 = None
    for name, k in blocks:
        if name in ("mean", "std") and mean64 is None:
            # Mean of the integer codes, then the affine map: exact, and cheaper than dequantising.
            mean64 = q.sum(axis=0, dtype=np.int64) / frames
        if name == "mean":
            out.append(mean64 * QUANT_SCALE + QUANT_BIAS)
        elif name == "std":
            qf = q.astype(np.float64)
            var = np.maximum((qf * qf).mean(axis=0) - mean64 * mean64, 0.0)
            out.append(np.sqrt(var) * QUANT_SCALE)
        else:
            # uint8 with kind="stable" is a radix sort; rows contiguous per dimension: ~10x np.sort(axis=0)
            top = np.sort(np.ascontiguousarray(q.T), axis=1, kind="stable")[:, : -k - 1 : -1].T
            if top.shape[0] < k:
                top = np.concatenate([top, np.repeat(top[-1:], k - top.shape[0], axis=0)])
            out.append((top.astype(np.float64) * QUANT_SCALE + QUANT_BIAS).ravel())
    return np.concatenate(out).astype(np.float32)


# ----------------------------------------------------------------------------- one record (the fallback)


def _kind(feature: Any) -> str:
    return feature.WhichOneof("kind") or "empty"


def _id_of(feats: Any) -> tuple[str, str]:
    """``(key, id)`` of a ``Features`` map: ``id`` (2018) or ``video_id`` (2017), one UTF-8 value."""
    if "id" in feats:  # test with `in` first: indexing a protobuf message map inserts the key
        key = "id"
    elif "video_id" in feats:
        key = "video_id"
    else:
        raise _RecordError(MISSING_FEATURE, "no 'id' (2018) or 'video_id' (2017) feature")
    f = feats[key]
    if _kind(f) != "bytes_list":
        raise _RecordError(WRONG_TYPE, f"{key!r} is {_kind(f)}, expected bytes_list")
    values = f.bytes_list.value
    if len(values) != 1:
        raise _RecordError(WRONG_LENGTH, f"{key!r} has {len(values)} values, expected 1")
    if not values[0]:
        raise _RecordError(BAD_ID, f"empty {key!r}")
    try:
        return key, values[0].decode("utf-8")
    except UnicodeDecodeError:
        raise _RecordError(BAD_ID, f"{key!r} is not UTF-8: {values[0][:32]!r}") from None


def _labels_of(feats: Any) -> list[int]:
    if "labels" not in feats:
        return []
    f = feats["labels"]
    if _kind(f) == "empty":
        return []
    if _kind(f) != "int64_list":
        raise _RecordError(WRONG_TYPE, f"'labels' is {_kind(f)}, expected int64_list")
    return list(f.int64_list.value)


def _floats_of(feats: Any, name: str) -> np.ndarray:
    if name not in feats:
        # Parsed as an Example, a SequenceExample shows only its context (id, labels).
        hint = " (a frame-level SequenceExample? use level='frame')" if "mean_audio" not in feats else ""
        raise _RecordError(MISSING_FEATURE, f"no {name!r} feature{hint}")
    f = feats[name]
    if _kind(f) not in ("float_list", "empty"):
        raise _RecordError(WRONG_TYPE, f"{name!r} is {_kind(f)}, expected float_list")
    return np.array(f.float_list.value, np.float32)  # float32 -> double -> float32: exact


def _frames_of(lists: Any, name: str) -> np.ndarray:
    """uint8 ``[F, W]``: the frames of one ``FeatureList`` (one ``W``-byte string per step)."""
    if name not in lists:
        raise _RecordError(MISSING_FEATURE, f"no {name!r} feature list")
    steps = []
    for f in lists[name].feature:
        if _kind(f) != "bytes_list":
            raise _RecordError(WRONG_TYPE, f"a {name!r} frame is {_kind(f)}, expected bytes")
        if len(f.bytes_list.value) != 1:
            raise _RecordError(WRONG_LENGTH, f"a {name!r} frame has {len(f.bytes_list.value)} values, expected 1")
        steps.append(f.bytes_list.value[0])
    widths = sorted({len(b) for b in steps})
    if len(widths) > 1:
        raise _RecordError(WRONG_LENGTH, f"{name!r} frames of {widths} bytes in one video")
    return np.frombuffer(b"".join(steps), np.uint8).reshape(len(steps), widths[0] if widths else 0)


def _decode_record(rec: bytes, level: str) -> tuple[str, str, list[int], np.ndarray, np.ndarray]:
    """Decode one serialized record with protobuf (``tf.train.Example`` / ``SequenceExample``).

    Returns:
        ``(id_key, id, labels, rgb, audio)``: float32 ``[W_rgb]`` / ``[W_audio]`` at video level,
        uint8 frames ``[F, W_rgb]`` / ``[F, W_audio]`` at frame level.

    Raises:
        _RecordError: with the reason and what is wrong.
    """
    from google.protobuf.message import DecodeError

    tf = tensorflow()
    try:
        if level == "video":
            ex = tf.train.Example.FromString(rec)
        else:
            ex = tf.train.SequenceExample.FromString(rec)
    except DecodeError as e:
        raise _RecordError(NOT_EXAMPLE, f"not a valid protobuf message: {e}") from None
    if level == "video":
        if not ex.HasField("features"):
            raise _RecordError(NOT_EXAMPLE, "no Example.features field")
        feats = ex.features.feature
        key, vid = _id_of(feats)
        return key, vid, _labels_of(feats), _floats_of(feats, "mean_rgb"), _floats_of(feats, "mean_audio")
    if not ex.HasField("context") and not ex.HasField("feature_lists"):
        raise _RecordError(NOT_EXAMPLE, "no SequenceExample.context or feature_lists field")
    key, vid = _id_of(ex.context.feature)
    labels = _labels_of(ex.context.feature)
    rgb = _frames_of(ex.feature_lists.feature_list, "rgb")
    audio = _frames_of(ex.feature_lists.feature_list, "audio")
    if rgb.shape[0] != audio.shape[0]:
        raise _RecordError(WRONG_LENGTH, f"{rgb.shape[0]} rgb frames but {audio.shape[0]} audio frames")
    if rgb.shape[0] == 0:
        raise _RecordError(NO_FRAMES, "zero frames")
    return key, vid, labels, rgb, audio


def _check_widths(state: "_State", rgb: int, audio: int, where: str) -> None:
    """Every record's feature widths must be those given, or else those of the first record read.

    ``rgb`` / ``audio``: floats per feature (video level) or bytes per frame (frame level);
    ``where``: ``"<file> record <i>"``, remembered if this record sets the widths.
    """
    video = state.level == "video"
    names = ("mean_rgb", "mean_audio") if video else ("rgb", "audio")
    for name, got in zip(names, (rgb, audio)):
        if got == 0:
            raise _RecordError(WRONG_LENGTH, f"{name!r} is empty" if video else f"{name!r} frames of 0 bytes")
    if state.dims_where is None and None in state.dims:  # this record sets the widths not given
        state.dims = (state.dims[0] or rgb, state.dims[1] or audio)
        state.dims_where = where
    for name, got, want, given in zip(names, (rgb, audio), state.dims, state.dims_given):
        if got != want:
            what = f"{name!r} has {got} floats" if video else f"{name!r} frames of {got} bytes"
            source = "" if given else f" (the width of {state.dims_where})"
            raise _RecordError(WRONG_LENGTH, f"{what}, expected {want}{source}")


# ----------------------------------------------------------------------------- the reader


def _segments(starts: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Indices ``[starts_0 .. starts_0+counts_0) ++ [starts_1 ..) ++ ...`` without a Python loop."""
    total = int(counts.sum())
    ends = np.cumsum(counts)
    return np.repeat(starts - (ends - counts), counts) + np.arange(total)


@dataclass
class _Rows:
    """Decoded records, in (file, record) order, before validation (columnar)."""

    file: np.ndarray  # int64 [m]: file number (position in _State.files)
    index: np.ndarray  # int64 [m]: record index within its file
    offset: np.ndarray  # int64 [m]: byte offset of the record's header within its file
    video_id_key: np.ndarray  # bool [m]: the id came from "video_id" (2017) rather than "id"
    ids: list[str]
    label_counts: np.ndarray  # int64 [m]
    label_values: np.ndarray  # int64 [sum(label_counts)]
    rgb: np.ndarray  # float32 [m, W_rgb]
    audio: np.ndarray  # float32 [m, W_audio]
    frames: list[np.ndarray] | None  # frame level with keep_frames: float16 [F_i, 1152] each

    def label_starts(self) -> np.ndarray:
        return np.cumsum(self.label_counts) - self.label_counts

    @staticmethod
    def concat(parts: list["_Rows"], rgb: np.ndarray | None = None, audio: np.ndarray | None = None) -> "_Rows":
        """Video-level rows of consecutive files, as one, with the features copied into ``rgb`` / ``audio``
        (``None``: without features, where the caller has already put them in place)."""
        cat = np.concatenate
        return _Rows(
            file=cat([p.file for p in parts]), index=cat([p.index for p in parts]), offset=cat([p.offset for p in parts]),
            video_id_key=cat([p.video_id_key for p in parts]),
            ids=list(chain.from_iterable(p.ids for p in parts)),
            label_counts=cat([p.label_counts for p in parts]), label_values=cat([p.label_values for p in parts]),
            rgb=None if rgb is None else cat([p.rgb for p in parts], out=rgb),
            audio=None if audio is None else cat([p.audio for p in parts], out=audio), frames=None,
        )

    def split(self, k: int) -> tuple["_Rows", "_Rows"]:
        """Video level: the first ``k`` rows and the rest, without features (the caller keeps those in place)."""
        cut = int(self.label_counts[:k].sum())

        def part(rows: slice, labels: slice) -> _Rows:
            return _Rows(file=self.file[rows], index=self.index[rows], offset=self.offset[rows],
                         video_id_key=self.video_id_key[rows], ids=self.ids[rows], label_counts=self.label_counts[rows],
                         label_values=self.label_values[labels], rgb=None, audio=None, frames=None)

        return part(slice(0, k), slice(0, cut)), part(slice(k, None), slice(cut, None))

    def take(self, rows: np.ndarray) -> "_Rows":
        """These rows (int indices), in the given order."""
        order = rows.tolist()
        return _Rows(
            file=self.file[rows], index=self.index[rows], offset=self.offset[rows],
            video_id_key=self.video_id_key[rows], ids=[self.ids[i] for i in order],
            label_counts=self.label_counts[rows],
            label_values=self.label_values[_segments(self.label_starts()[rows], self.label_counts[rows])],
            rgb=self.rgb[rows], audio=self.audio[rows],
            frames=None if self.frames is None else [self.frames[i] for i in order],
        )


# (file number, record index, reason, detail, byte offset of the record in its file)
_Error = tuple[int, int, str, str, int | None]

# Video level, the stream: records per parse_example call, across file boundaries (~4.7 MB in, as
# much out: the batch a bare tf.data pipeline uses; larger batches fall out of the CPU caches).
VIDEO_BATCH = 1024
_WHOLE_FILE = 2**31 - 1  # video level, file by file: all records of a file in one parse_example call (a few MB)
FRAME_BATCH = 64  # frame level: SequenceExamples per parse call (~22 MB of 300-frame videos)
COMMIT_ROWS = 2048  # video level, file by file: rows validated together (~9 MB of features, few calls)


@dataclass
class _State:
    """What the reader accumulates across files, and the settings every file is read with."""

    level: str
    on_error: str
    num_classes: int | None
    require_labels: bool
    report: SkipReport
    blocks: list[tuple[str, int]]  # frame level: pooling blocks (video level: [("mean", 1)])
    max_frames: int
    keep_frames: bool
    dims: tuple[int | None, int | None]  # raw (rgb, audio) widths: given, or those of the first record read
    dims_where: str | None = None  # "<file> record <i>" that set the widths not given
    dims_given: tuple[bool, bool] = (False, False)
    total_bytes: int = 0  # of all files: bounds the number of video-level records
    id_key: str | None = None  # "id" or "video_id" of the first valid record
    id_key_where: str = ""
    # id -> number of the row that first had it, counting every row validated (origin() says where
    # that row came from): a plain int, as a (file, record) tuple per row costs more than the check.
    seen: dict[str, int] = field(default_factory=dict)
    validated: int = 0  # rows validated
    origins: list[tuple[int, np.ndarray, np.ndarray]] = field(default_factory=list)  # (first row, file, index)
    files: list[str] = field(default_factory=list)
    kept: list[_Rows] = field(default_factory=list)  # rows kept (features moved to out_* when given)
    count: int = 0  # videos kept
    out_rgb: np.ndarray | None = None  # video level: preallocated [capacity, W_rgb] result rows
    out_audio: np.ndarray | None = None
    filled: int = 0  # rows of out_* written

    def number(self, rows: _Rows) -> int:
        """Number ``rows`` as validated from here on; returns the number of their first row."""
        first = self.validated
        self.origins.append((first, rows.file, rows.index))
        self.validated += len(rows.ids)
        return first

    def origin(self, row: int) -> tuple[int, int]:
        """``(file number, record index)`` of validated row number ``row``."""
        first, file, index = self.origins[bisect.bisect_right(self.origins, row, key=lambda o: o[0]) - 1]
        return int(file[row - first]), int(index[row - first])

    def widths(self) -> tuple[int, int] | None:
        """Output widths: ``dims`` times the pooling blocks (``None`` while ``dims`` is unknown)."""
        if None in self.dims:
            return None
        b = sum(k for _, k in self.blocks)
        return self.dims[0] * b, self.dims[1] * b


def _validate(rows: _Rows, state: _State, errors: list[_Error]) -> np.ndarray:
    """Checks that need the decoded values (and, for duplicates, the files read before).

    Returns:
        bool ``[m]``: rows that pass; the others are appended to ``errors``.
    """
    files = state.files

    def err(r: int, reason: str, detail: str) -> None:
        errors.append((int(rows.file[r]), int(rows.index[r]), reason, detail, int(rows.offset[r])))

    # A row sum is non-finite if any value is (NaN, inf); it can also overflow from finite values,
    # so only rows with a non-finite sum get the exact (and slower) element-wise check.
    keep = np.isfinite(rows.rgb.sum(axis=1)) & np.isfinite(rows.audio.sum(axis=1))
    if not keep.all():
        suspect = np.flatnonzero(~keep)
        keep[suspect] = np.isfinite(rows.rgb[suspect]).all(axis=1) & np.isfinite(rows.audio[suspect]).all(axis=1)
    for r in np.flatnonzero(~keep).tolist():
        err(r, NON_FINITE, f"NaN or inf in {'mean_rgb' if not np.isfinite(rows.rgb[r]).all() else 'mean_audio'!r}")
    # The id key names the release and so the label vocabulary: never mix them silently.
    if keep.any():
        first = int(np.argmax(keep))
        if state.id_key is None:
            state.id_key = "video_id" if rows.video_id_key[first] else "id"
            state.id_key_where = f"{files[rows.file[first]]} record {int(rows.index[first])}"
        other = keep & (rows.video_id_key != (state.id_key == "video_id"))
        if other.any() and state.num_classes is None:
            r = int(np.argmax(other))
            key = "video_id" if rows.video_id_key[r] else "id"
            raise ValueError(
                f"{files[rows.file[r]]} record {int(rows.index[r])} uses the {key!r} key "
                f"({NUM_CLASSES_BY_ID_KEY[key]} classes) but {state.id_key_where} uses {state.id_key!r} "
                f"({NUM_CLASSES_BY_ID_KEY[state.id_key]} classes): these are different label vocabularies; "
                "read them separately or pass num_classes"
            )
    num_classes = state.num_classes or NUM_CLASSES_BY_ID_KEY[state.id_key or "id"]
    labelled = rows.label_counts > 0
    if labelled.any():
        which = np.flatnonzero(labelled)
        starts = rows.label_starts()[which]
        lo = np.minimum.reduceat(rows.label_values, starts)
        hi = np.maximum.reduceat(rows.label_values, starts)
        for j in np.flatnonzero((lo < 0) | (hi >= num_classes)).tolist():
            r = int(which[j])
            if keep[r]:
                keep[r] = False
                worst = int(lo[j]) if lo[j] < 0 else int(hi[j])
                err(r, LABEL_OUT_OF_RANGE, f"label {worst} outside [0, {num_classes})")
    if state.require_labels:
        for r in np.flatnonzero(keep & ~labelled).tolist():
            keep[r] = False
            err(r, NO_LABELS, "no labels (require_labels=True)")
    seen = state.seen
    number = state.number(rows)
    candidates = np.flatnonzero(keep)
    if len(candidates) == len(rows.ids):
        fresh = dict(zip(rows.ids, range(number, number + len(rows.ids))))
    else:
        fresh = {rows.ids[r]: number + r for r in candidates.tolist()}
    if len(fresh) == len(candidates) and seen.keys().isdisjoint(fresh):
        seen.update(fresh)  # the usual case, without a Python step per record
    else:
        for r in candidates.tolist():
            vid = rows.ids[r]
            first_seen = seen.get(vid)
            if first_seen is not None:
                keep[r] = False
                file_number, index = state.origin(first_seen)
                err(r, DUPLICATE_ID, f"id {vid!r} already read from {files[file_number]} record {index}; "
                                     "the first is kept")
            else:
                seen[vid] = number + r
    unlabelled = int((keep & ~labelled).sum())
    if unlabelled:
        state.report.note("unlabelled", unlabelled)
    return keep


# ----------------------------------------------------------------------------- reading files


def _max_videos(total_bytes: int, dims: tuple[int, int]) -> int:
    """Upper bound on the video-level records ``total_bytes`` of files can hold: a kept record has at
    least ``4 * (rgb + audio)`` bytes of floats (4608 for YouTube-8M) plus 16 of framing."""
    return total_bytes // (4 * (dims[0] + dims[1]) + HEADER_BYTES + FOOTER_BYTES)


def _offsets(lengths: np.ndarray, start: int = 0) -> np.ndarray:
    """Header offsets of consecutive intact records from their payload lengths (first one at ``start``)."""
    sizes = lengths.astype(np.int64) + (HEADER_BYTES + FOOTER_BYTES)
    return start + np.cumsum(sizes) - sizes


def _pool(state: _State, rgb_q: np.ndarray, audio_q: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Frame level: the first ``max_frames`` frames (as YouTube-8M keeps them), pooled; and the frames if kept."""
    rgb_q, audio_q = rgb_q[: state.max_frames], audio_q[: state.max_frames]
    frames = None
    if state.keep_frames:
        frames = np.concatenate([dequantize(rgb_q), dequantize(audio_q)], axis=1).astype(np.float16)
    return pool_frames(rgb_q, state.blocks), pool_frames(audio_q, state.blocks), frames


def _make_rows(state: _State, number: int, index: np.ndarray, offset: np.ndarray, video_id_key: np.ndarray,
               ids: list[str], labels: list[np.ndarray] | tuple[np.ndarray, np.ndarray], rgb: list | np.ndarray,
               audio: list | np.ndarray, frames: list | None = None) -> _Rows:
    """Rows of one file; ``labels`` as per-row arrays or as ``(counts, values)``; ``rgb``/``audio``
    as ``[m, W]`` arrays or lists of ``[W]`` rows."""
    m = len(ids)
    if isinstance(labels, tuple):
        counts, values = labels
    else:
        counts = np.array([len(x) for x in labels], np.int64)
        values = np.concatenate(labels).astype(np.int64) if m else np.zeros(0, np.int64)
    widths = state.widths() or (0, 0)
    if isinstance(rgb, list):
        rgb = np.stack(rgb) if m else np.zeros((0, widths[0]), np.float32)
        audio = np.stack(audio) if m else np.zeros((0, widths[1]), np.float32)
    return _Rows(file=np.full(m, number, np.int64), index=np.asarray(index, np.int64),
                 offset=np.asarray(offset, np.int64), video_id_key=np.asarray(video_id_key, bool), ids=ids,
                 label_counts=np.asarray(counts, np.int64), label_values=np.asarray(values, np.int64),
                 rgb=rgb, audio=audio, frames=frames if state.keep_frames else None)


def _read_records(path: Path, number: int, state: _State) -> tuple[_Rows, list[_Error]]:
    """The fallback for one file: our framing finds the intact records, protobuf decodes each one."""
    buf = path.read_bytes()
    spans, framing = frame_records(buf)
    errors: list[_Error] = [(number, e.index, e.reason, e.detail, e.offset) for e in framing]
    state.report.records_read += len(spans) + len(framing)
    cols: dict[str, list] = {k: [] for k in ("index", "offset", "key", "ids", "labels", "rgb", "audio", "frames")}
    for index, start, length in spans:
        offset = start - HEADER_BYTES
        try:
            key, vid, labels, rgb, audio = _decode_record(buf[start : start + length], state.level)
            _check_widths(state, rgb.shape[-1], audio.shape[-1], f"{path} record {index}")
        except _RecordError as e:
            errors.append((number, index, e.reason, e.detail, offset))
            continue
        frames = None
        if state.level == "frame":
            rgb, audio, frames = _pool(state, rgb, audio)
        for k, v in zip(cols, (index, offset, key == "video_id", vid, np.array(labels, np.int64), rgb, audio, frames)):
            cols[k].append(v)
    errors.sort(key=lambda e: e[1])  # framing and decoding errors in record order
    rows = _make_rows(state, number, cols["index"], cols["offset"], cols["key"], cols["ids"], cols["labels"],
                      cols["rgb"], cols["audio"], cols["frames"])
    return rows, errors


def _context_spec(tf: Any) -> dict:
    # A missing id is "" (then the other key is used); two values are TensorFlow's error (fallback).
    return {"id": tf.io.FixedLenFeature([], tf.string, default_value=""),
            "video_id": tf.io.FixedLenFeature([], tf.string, default_value=""),
            "labels": tf.io.RaggedFeature(tf.int64, row_splits_dtype=tf.int64)}


def _flat(out: dict, parsed: dict) -> dict:
    """Parsed features as plain tensors: a RaggedTensor ``key`` -> ``key`` values, ``key/splits`` row splits."""
    for key, t in parsed.items():
        if hasattr(t, "row_splits"):  # a RaggedTensor (labels)
            out[key], out[key + "/splits"] = t.values, t.row_splits
        else:
            out[key] = t
    return out


def _parse_video(tf: Any, id_key: str, dims: tuple[int, int]) -> Any:
    """The graph function both video-level datasets map over batches of serialized records.

    Its output: ``length`` (each record's payload bytes, which place the record in its file), the
    id as ``id``, ``labels`` / ``labels/splits`` and the features. A record without ``id_key``, with a
    feature of another width than ``dims``, or no Example at all, fails the batch (InvalidArgumentError).
    """
    spec = {id_key: tf.io.FixedLenFeature([], tf.string), "labels": _context_spec(tf)["labels"],
            "mean_rgb": tf.io.FixedLenFeature([dims[0]], tf.float32),
            "mean_audio": tf.io.FixedLenFeature([dims[1]], tf.float32)}

    @tf.autograph.experimental.do_not_convert  # straight-line graph code: tracing without autograph is faster
    def parse(s: Any) -> dict:
        parsed = tf.io.parse_example(s, spec)
        return _flat({"length": tf.strings.length(s), "id": parsed.pop(id_key)}, parsed)

    return parse


def _stream_dataset(tf: Any, files: list[Path], id_key: str, dims: tuple[int, int], threads: int) -> Any:
    """All records of ``files``, in file order, parsed in batches of ``VIDEO_BATCH`` that span files.

    The fast path (:func:`_read_stream`): one parse call per ``VIDEO_BATCH`` records however small
    the files, and one graph function to trace. The first damaged record or one that does not parse
    as asked raises its error in place of its batch, and the reader goes on file by file.
    """
    parallel = {"num_parallel_calls": threads, "deterministic": True} if threads > 1 else {}
    return (tf.data.TFRecordDataset([str(f) for f in files]).batch(VIDEO_BATCH)
            .map(_parse_video(tf, id_key, dims), **parallel).with_options(_options(tf, threads)))


def _video_dataset(tf: Any, files: list[Path], id_key: str, dims: tuple[int, int], threads: int,
                   first: int = 0) -> Any:
    """One element per file of ``files[first:]``: the parsed records of the whole file, and its number as ``file``.

    The file-by-file path, after the stream failed: a file TensorFlow cannot read or parse as asked
    (a damaged record, no ``id_key``, a feature of another width than ``dims``) yields no element
    (its error is raised in its place), which is how the reader finds the files to read again
    record by record.
    """
    names = tf.constant([str(f) for f in files])
    parse = _parse_video(tf, id_key, dims)
    plain = tf.autograph.experimental.do_not_convert

    @plain
    def one_file(i: Any) -> Any:
        records = tf.data.TFRecordDataset(names[i]).batch(_WHOLE_FILE)
        return records.map(plain(lambda s: {"file": i, **parse(s)}))

    # What TFRecordDataset(num_parallel_reads=threads) does inside, with each file's records kept together.
    # One thread: the sequential interleave (a parallel one with one call only adds a hand-off).
    parallel = {"num_parallel_calls": threads, "deterministic": True} if threads > 1 else {}
    return tf.data.Dataset.range(first, len(files)).interleave(one_file, cycle_length=threads,
                                                                **parallel).with_options(_options(tf, threads))


def _frame_dataset(tf: Any, path: Path, threads: int) -> Any:
    """Batches of ``FRAME_BATCH`` parsed SequenceExamples of one file, frames as uint8 ``[frames, W]``."""
    context = _context_spec(tf)
    sequence = {key: tf.io.RaggedFeature(tf.string, row_splits_dtype=tf.int64) for key in ("rgb", "audio")}

    @tf.autograph.experimental.do_not_convert
    def parse(s: Any) -> dict:
        ctx, seq, _ = tf.io.parse_sequence_example(s, context_features=context, sequence_features=sequence)
        out = _flat({"length": tf.strings.length(s)}, ctx)
        for key, r in seq.items():  # [videos, frames, values]: one bytes value per frame
            out[key] = tf.io.decode_raw(r.flat_values, tf.uint8)  # frames of unequal size: InvalidArgumentError
            out[key + "/splits"] = r.row_splits
            out[key + "/one_value"] = tf.reduce_all(tf.equal(r.values.row_lengths(), 1))
        return out

    return (tf.data.TFRecordDataset(str(path)).batch(FRAME_BATCH)
            .map(parse, num_parallel_calls=threads, deterministic=True).with_options(_options(tf, threads)))


def _first_record(files: list[Path]) -> tuple[str, int, int, str] | None:
    """Video level: ``(id key, rgb width, audio width, "<file> record <i>")`` of the first record that decodes."""
    for path in files:
        buf = path.read_bytes()
        for item in iter_frames(buf):  # framed lazily: usually record 0 is the one
            if isinstance(item, FramingError):
                continue
            index, start, length = item
            try:
                key, _, _, rgb, audio = _decode_record(buf[start : start + length], "video")
            except _RecordError:
                continue
            if len(rgb) and len(audio):
                return key, len(rgb), len(audio), f"{path} record {index}"
    return None


def _tf_errors(tf: Any) -> tuple[type[Exception], ...]:
    """What TensorFlow raises for a damaged file: DataLoss (CRC, truncation), InvalidArgument (a record
    it cannot parse as asked), and UnicodeDecodeError when that message quotes the record's bytes and
    so is not UTF-8 (the status cannot become a Python string, but the iterator has moved on)."""
    return tf.errors.DataLossError, tf.errors.InvalidArgumentError, UnicodeDecodeError


def _options(tf: Any, threads: int) -> Any:
    options = tf.data.Options()
    options.threading.private_threadpool_size = threads  # "reader threads" means what it says
    options.threading.max_intra_op_parallelism = 1
    options.autotune.enabled = False  # fixed parallelism: the same work on every run
    return options


def _arrays(el: dict) -> dict[str, np.ndarray]:
    """An element's tensors as NumPy arrays; ``np.asarray`` shares the tensor's memory (``.numpy()`` copies)."""
    return {k: np.asarray(v) for k, v in el.items()}


def _ids(el: dict) -> tuple[list[str], np.ndarray] | None:
    """Ids and ``video_id``-key flags of parsed records; ``None`` unless each has a non-empty UTF-8 id."""
    use_vid = el["id"] == b""
    ids = _utf8_ids(np.where(use_vid, el["video_id"], el["id"]) if use_vid.any() else el["id"])
    return None if ids is None else (ids, use_vid)  # None: neither key, or an empty id


def _utf8_ids(raw: np.ndarray) -> list[str] | None:
    """Parsed ids as text; ``None`` unless each is non-empty UTF-8 (the record-by-record read says which is not)."""
    if not all(raw):
        return None
    try:
        return list(map(bytes.decode, raw))
    except UnicodeDecodeError:
        return None


def _tf_video_rows(el: dict, number: int, id_key: str, state: _State) -> _Rows | None:
    """Rows of one file parsed by TensorFlow; ``None`` when a record needs the record-by-record read."""
    el = _arrays(el)
    ids = _utf8_ids(el["id"])
    if ids is None:
        return None
    n = len(ids)
    state.report.records_read += n
    return _make_rows(state, number, np.arange(n), _offsets(el["length"]), np.full(n, id_key == "video_id"), ids,
                      (np.diff(el["labels/splits"]), el["labels"]), el["mean_rgb"], el["mean_audio"])


def _tf_frame_rows(tf: Any, path: Path, number: int, state: _State, threads: int) -> _Rows | None:
    """Rows of one frame-level file parsed by TensorFlow; ``None`` when it needs the record-by-record read."""
    cols: dict[str, list] = {k: [] for k in ("offset", "key", "ids", "labels", "rgb", "audio", "frames")}
    start = 0
    try:
        for el in _frame_dataset(tf, path, threads):
            el = _arrays(el)
            got = _ids(el)
            frames = np.diff(el["rgb/splits"])
            if (got is None or not (el["rgb/one_value"] and el["audio/one_value"])
                    or not np.array_equal(frames, np.diff(el["audio/splits"])) or not frames.all()):
                return None
            _check_widths(state, el["rgb"].shape[1], el["audio"].shape[1], f"{path} record {len(cols['ids'])}")
            offsets = _offsets(el["length"], start)
            start = int(offsets[-1]) + int(el["length"][-1]) + HEADER_BYTES + FOOTER_BYTES
            labels = np.split(el["labels"], el["labels/splits"][1:-1])
            for r in range(len(frames)):
                a, b = el["rgb/splits"][r], el["rgb/splits"][r + 1]
                rgb, audio, kept = _pool(state, el["rgb"][a:b], el["audio"][a:b])
                for k, v in zip(cols, (offsets[r], got[1][r], got[0][r], labels[r], rgb, audio, kept)):
                    cols[k].append(v)
    except (*_tf_errors(tf), _RecordError):
        return None
    n = len(cols["ids"])
    state.report.records_read += n
    return _make_rows(state, number, np.arange(n), cols["offset"], cols["key"], cols["ids"], cols["labels"],
                      cols["rgb"], cols["audio"], cols["frames"])


def _reserve(state: _State, m: int) -> tuple[np.ndarray, np.ndarray]:
    """Video level: views of the next ``m`` free rows of the result arrays (allocated, grown as needed)."""
    if state.out_rgb is None:
        capacity = max(_max_videos(state.total_bytes, state.dims), m)
        state.out_rgb = np.empty((capacity, state.dims[0]), np.float32)
        state.out_audio = np.empty((capacity, state.dims[1]), np.float32)
    if state.filled + m > len(state.out_rgb):  # only if a file grew after it was sized
        grow = max(m, len(state.out_rgb) // 2)
        state.out_rgb = np.concatenate([state.out_rgb, np.empty((grow, state.dims[0]), np.float32)])
        state.out_audio = np.concatenate([state.out_audio, np.empty((grow, state.dims[1]), np.float32)])
    end = state.filled + m
    return state.out_rgb[state.filled : end], state.out_audio[state.filled : end]


def _commit(rows: _Rows, errors: list[_Error], state: _State) -> int:
    """Validate the rows of whole files, raise or report their errors, keep the good rows; return how many."""
    keep = _validate(rows, state, errors)
    if errors:
        errors.sort(key=lambda e: (e[0], e[1]))  # file order, then record order
        if state.on_error == "raise":
            file_number, index, reason, detail, offset = errors[0]
            raise TFRecordError(state.files[file_number], index, reason, detail, offset)
        for file_number, index, reason, detail, offset in errors:
            state.report.add(state.files[file_number], index, reason, detail, offset)
    if not keep.all():
        rows = rows.take(np.flatnonzero(keep))
    m = len(rows.ids)
    if state.level == "video" and m:  # the features live in the result arrays; the rows keep the rest
        rgb, audio = _reserve(state, m)
        if rows.rgb.ctypes.data != rgb.ctypes.data:  # not already in place (see _read_stream, _Rows.concat)
            rgb[:] = rows.rgb
            audio[:] = rows.audio
        state.filled += m
        rows.rgb = rows.audio = None
    state.kept.append(rows)
    return m


def _keep(held: list[_Rows], k: int, state: _State, done: Any) -> list[_Rows]:
    """The stream's first ``k`` held rows (whole files) validated and kept; returns the rest, still held.

    The held rows' features lie in order at ``out[filled:]``; where validation dropped rows, those of
    the rest move up behind the kept ones.
    """
    if k == 0:
        return held
    head, rest = _Rows.concat(held).split(k)
    head.rgb, head.audio = _reserve(state, k)  # where _read_stream put them: kept in place
    before = state.filled
    state.report.records_read += k
    done(head, [], int(head.file[-1]) - int(head.file[0]) + 1)
    m = len(rest.ids)
    if m and state.filled != before + k:
        for out in (state.out_rgb, state.out_audio):
            out[state.filled : state.filled + m] = out[before + k : before + k + m]
    return [rest] if m else []


def _read_stream(tf: Any, files: list[Path], id_key: str, state: _State, threads: int, done: Any) -> int:
    """Video level, the fast path: all files as one record stream, parsed ``VIDEO_BATCH`` records at a time.

    tf.data does not say which file a record came from, but the records of an intact file tile it,
    each one its payload plus 16 bytes of framing. So the payload lengths and the file sizes place
    every record: its file, its index there and its byte offset, as the error messages need them.
    The features go straight into the result arrays (the one copy of them); a file's rows are
    validated and kept (``done``) once its last record has arrived, so a failure later in that file
    leaves nothing of it behind.

    Args:
        done: ``done(rows, errors, files)`` validates and keeps ``rows``, which complete ``files`` files.

    Returns:
        How many leading files were read and kept: all of them, unless TensorFlow failed (a damaged
        record, one that does not parse as asked), an id is empty or not UTF-8, or the records do
        not tile the files (one changed size while read); the reader then reads the others file by file.
    """
    ends = np.cumsum([f.stat().st_size for f in files])  # stream byte offset where each file ends
    begins = ends - np.diff(ends, prepend=0)
    record0 = np.zeros(len(files), np.int64)  # stream record number of each file's record 0
    framing = HEADER_BYTES + FOOTER_BYTES
    kept = 0  # files[:kept] are validated and kept
    held: list[_Rows] = []  # rows received but not yet kept: those of the file being read (and more)
    behind = 0  # how many (their features lie in order at out[filled:])
    pos = 0  # stream byte offset after the last record received
    received = 0  # records received
    it = iter(_stream_dataset(tf, files, id_key, state.dims, threads))
    while True:
        try:
            el = next(it)
        except StopIteration:
            break
        except _tf_errors(tf):
            return kept
        el = _arrays(el)
        ids = _utf8_ids(el["id"])
        if ids is None:
            return kept
        n = len(ids)
        end = pos + np.cumsum(el["length"].astype(np.int64) + framing)  # each record's end in the stream
        start = np.empty_like(end)
        start[0], start[1:] = pos, end[:-1]
        file = np.searchsorted(ends, start, side="right")
        if file[-1] >= len(files) or (end > ends[file]).any():  # a record past its file: not the files we sized
            return kept
        begun = start == begins[file]  # records 0 of the files that begin in this batch
        record0[file[begun]] = received + np.flatnonzero(begun)
        batch = _Rows(file=file, index=received + np.arange(n) - record0[file], offset=start - begins[file],
                      video_id_key=np.full(n, id_key == "video_id"), ids=ids,
                      label_counts=np.diff(el["labels/splits"]), label_values=el["labels"],
                      rgb=None, audio=None, frames=None)
        # Behind the held rows in the result arrays: the only copy of the features TensorFlow parsed.
        rgb, audio = _reserve(state, behind + n)
        rgb[behind:], audio[behind:] = el["mean_rgb"], el["mean_audio"]
        held.append(batch)
        pos, received = int(end[-1]), received + n
        # Keep the files that ended in this batch. The held rows belong to the file the batch began
        # in (the batch before ended inside it), so they are kept once that file has ended.
        last = int(file[-1])
        if pos == ends[last]:  # the batch ended with a file: keep everything
            held, kept = _keep(held, behind + n, state, done), last + 1
        elif file[0] != last:  # all but the rows of the last file, which goes on in the next batch
            held, kept = _keep(held, behind + int(np.searchsorted(file, last)), state, done), last
        behind = sum(len(r.ids) for r in held)
    if pos != ends[-1]:  # tf.data ended early: not the files we sized
        return kept
    return len(files)


def _read_files(files: list[Path], state: _State, threads: int, bar: Any) -> None:
    """Read every (non-empty) file, TensorFlow first, record by record where it fails; in file order."""
    tf = tensorflow()
    state.files = [str(f) for f in files]

    def done(rows: _Rows, errors: list[_Error], count: int = 1) -> None:
        state.count += _commit(rows, errors, state)
        state.report.files_read += count
        bar.update(count)
        if not bar.disable:
            bar.set_postfix(videos=state.count, skipped=len(state.report))

    if state.level == "frame":
        for number, path in enumerate(files):
            rows = _tf_frame_rows(tf, path, number, state, threads)
            done(*((rows, []) if rows is not None else _read_records(path, number, state)))
        return
    # parse_example needs the id key and the widths up front: those of the first record. A file
    # with the other key (2017 and 2018 mixed) or other widths then takes the fallback, which says why.
    first = _first_record(files)
    if first is None:  # no record anywhere decodes: read every file record by record, to say why
        for number, path in enumerate(files):
            done(*_read_records(path, number, state))
        return
    id_key, rgb, audio, where = first
    if None in state.dims:
        state.dims = (state.dims[0] or rgb, state.dims[1] or audio)  # a given width stays as given
        state.dims_where = where
    following = _read_stream(tf, files, id_key, state, threads, done)  # next file expected, in file order
    if following == len(files):
        return
    # The stream stopped at a file it could not read (or parse) whole: the rest file by file.
    pending: list[_Rows] = []  # TensorFlow's rows, validated together in batches of ~COMMIT_ROWS

    def flush() -> None:
        if pending:  # straight into the result arrays: one copy of the features in all
            done(_Rows.concat(pending, *_reserve(state, sum(len(r.ids) for r in pending))), [], len(pending))
            pending.clear()

    def fallback(until: int) -> None:
        nonlocal following
        for number in range(following, until):  # TensorFlow failed on these: read them record by record
            flush()
            done(*_read_records(files[number], number, state))
        following = until

    it = iter(_video_dataset(tf, files, id_key, state.dims, threads, first=following))
    while True:
        try:
            el = next(it)
        except StopIteration:
            break
        except _tf_errors(tf):
            continue  # that file yields no element; the gap it leaves sends it to the fallback
        number = int(el["file"])
        if number < following:
            raise RuntimeError(f"tf.data delivered {files[number]} out of order")
        fallback(number)
        rows = _tf_video_rows(el, number, id_key, state)
        if rows is None:
            flush()
            done(*_read_records(files[number], number, state))
        else:
            pending.append(rows)
            if sum(len(r.ids) for r in pending) >= COMMIT_ROWS:
                flush()
        following = number + 1
    fallback(len(files))
    flush()


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    """Rows of all files as one array (no copy for a single file)."""
    parts = [p for p in parts if len(p)]  # a file with no good record may predate the widths: [0, 0]
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def _describe(spec: Any, files: list[Path]) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    if len(files) <= 3:
        return ", ".join(str(f) for f in files)
    return f"{len(files)} files: {files[0]} ... {files[-1]}"


def read_tfrecords(
    paths_or_glob: str | os.PathLike | Sequence[str | os.PathLike],
    level: str = "video",
    on_error: str = "raise",
    num_classes: int | None = None,
    max_frames: int = 300,
    pooling: str = "mean",
    keep_frames: bool = False,
    progress: bool = True,
    *,
    top_k: int = 5,
    require_labels: bool = False,
    rgb_dim: int | None = None,
    audio_dim: int | None = None,
    num_parallel_reads: int | None = None,
) -> VideoSet:
    """Read YouTube-8M TFRecords into a :class:`VideoSet` (TensorFlow parses; see the module doc).

    Video-level records are ``tf.train.Example`` with ``id`` (2018) or ``video_id`` (2017),
    ``labels`` (int64), ``mean_rgb`` (1024 floats) and ``mean_audio`` (128 floats). Frame-level
    records are ``tf.train.SequenceExample`` with context ``id``/``video_id`` and ``labels`` and
    feature lists ``rgb`` / ``audio`` (one 1024- / 128-byte uint8 string per frame), which are
    dequantised (``q * 4/255 + 4/512 - 2``), cut to the first ``max_frames`` and pooled over
    frames (the paper's §3.2 averaging; the L2 normalisation is :meth:`VideoSet.features`' job).

    Args:
        paths_or_glob: a glob, a directory (all ``*.tfrecord`` in it), a file, or a list of these.
        level: ``"video"`` or ``"frame"``.
        on_error: ``"raise"``: the first bad record raises :class:`TFRecordError` naming the file,
            the record index and its byte offset. ``"skip"``: bad records are dropped, every good
            record is kept (also after a bad one) and the drops are listed in ``skipped`` (and
            summarised in a warning).
        num_classes: label vocabulary size; ``None`` means 3862 for ``id`` files (2018) and 4716
            for ``video_id`` files (2017). Labels outside ``[0, num_classes)`` are bad records.
        max_frames: frame level: keep at most the first ``max_frames`` frames of a video.
        pooling: frame level: ``"mean"`` (default), ``"mean+std"``, ``"topk"`` or any
            ``+``-joined list of ``mean``, ``std``, ``topk``/``top<k>``. With ``B`` blocks
            rgb becomes ``[N, 1024 * B]`` and audio ``[N, 128 * B]`` (``topk`` counts as ``k``
            blocks); ``VideoSet.pooling`` records the layout. Video-level files allow only ``"mean"``.
        keep_frames: frame level: also fill ``frames`` (float16 ``[N, T, 1152]``, zero-padded to
            the longest kept video, ``T <= max_frames``) and ``num_frames``.
        progress: show a tqdm bar over files.
        top_k: the ``k`` of ``"topk"`` pooling.
        require_labels: treat a record without labels as bad (by default an unlabelled video is
            valid and counted in ``skipped.info["unlabelled"]``).
        rgb_dim, audio_dim: feature sizes every record must have (YouTube-8M: 1024 and 128; 1280
            rgb for files written by ``vidsage ingest``). ``None`` (default): the sizes of the
            first record read, and every other record must agree (one that does not is a
            ``wrong_length`` bad record). The pooled widths and ``frames`` (``rgb + audio``)
            follow them; an empty result has YouTube-8M's widths.
        num_parallel_reads: record batches parsed at once by tf.data threads (video level, after a
            damaged file: files read and parsed at once). ``None``: ``min(#files, os.cpu_count())``.
            The result is the same for every value (file order).

    Returns:
        The videos in file order; ``skipped`` holds the :class:`SkipReport` (also when empty).

    Raises:
        FileNotFoundError: a path, directory or glob matched nothing (the message names it).
        TFRecordError: a bad record with ``on_error="raise"``.
        ValueError: bad arguments, or 2017 and 2018 files mixed without ``num_classes``.
    """
    if level not in LEVELS:
        raise ValueError(f"level must be one of {LEVELS}, got {level!r}")
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {ON_ERROR}, got {on_error!r}")
    if num_classes is not None and num_classes < 1:
        raise ValueError(f"num_classes must be positive, got {num_classes}")
    if max_frames < 1:
        raise ValueError(f"max_frames must be >= 1, got {max_frames}")
    if (rgb_dim is not None and rgb_dim < 1) or (audio_dim is not None and audio_dim < 1):
        raise ValueError(f"rgb_dim and audio_dim must be positive (or None), got {rgb_dim}, {audio_dim}")
    if num_parallel_reads is not None and num_parallel_reads < 1:
        raise ValueError(f"num_parallel_reads must be >= 1 (or None), got {num_parallel_reads}")
    blocks = parse_pooling(pooling, top_k)
    if level == "video":
        if blocks != [("mean", 1)]:
            raise ValueError(f"video-level records are already frame means; pooling={pooling!r} needs level='frame'")
        if keep_frames:
            raise ValueError("keep_frames=True needs level='frame' (video-level records hold no frames)")
    files = resolve_paths(paths_or_glob)
    report = SkipReport()
    state = _State(level=level, on_error=on_error, num_classes=num_classes, require_labels=require_labels,
                   report=report, blocks=blocks, max_frames=max_frames, keep_frames=keep_frames,
                   dims=(rgb_dim, audio_dim), dims_given=(rgb_dim is not None, audio_dim is not None))
    nonempty = []
    for path in files:
        size = path.stat().st_size
        if size == 0:
            warnings.warn(f"{path}: empty TFRecord file, read as zero records", stacklevel=2)
            report.note("empty_files")
            report.files_read += 1
            continue
        nonempty.append(path)
        state.total_bytes += size
    threads = num_parallel_reads or max(1, min(len(nonempty), os.cpu_count() or 1))
    bar = tqdm(total=len(nonempty), desc=f"reading {level}-level TFRecords", unit="file", disable=not progress)
    if nonempty:
        _read_files(nonempty, state, threads, bar)
    bar.close()

    dims = (state.dims[0] or RGB_DIM, state.dims[1] or AUDIO_DIM)  # nothing read: YouTube-8M's widths
    width = sum(k for _, k in blocks)
    widths = (dims[0] * width, dims[1] * width)
    resolved_classes = num_classes or NUM_CLASSES_BY_ID_KEY[state.id_key or "id"]
    ids_flat = list(chain.from_iterable(rows.ids for rows in state.kept))
    labels = csr_from_counts(np.concatenate([r.label_counts for r in state.kept] or [np.zeros(0, np.int64)]),
                             np.concatenate([r.label_values for r in state.kept] or [np.zeros(0, np.int64)]),
                             resolved_classes)
    frames = num_frames = None
    if keep_frames:
        kept_frames = [f for rows in state.kept for f in (rows.frames or [])]
        num_frames = np.array([f.shape[0] for f in kept_frames], np.int32)
        longest = int(num_frames.max()) if len(num_frames) else 0
        frames = np.zeros((len(kept_frames), longest, sum(dims)), np.float16)
        for i, f in enumerate(kept_frames):
            frames[i, : f.shape[0]] = f
    videos = VideoSet(
        ids=np.array(ids_flat, dtype=str) if ids_flat else np.zeros(0, "<U1"),
        rgb=_stack([r.rgb for r in state.kept], widths[0]) if state.out_rgb is None
        else state.out_rgb[: state.filled],
        audio=_stack([r.audio for r in state.kept], widths[1]) if state.out_audio is None
        else state.out_audio[: state.filled],
        labels=labels,
        num_classes=resolved_classes,
        source=f"yt8m {level}-level TFRecords: {_describe(paths_or_glob, files)}",
        synthetic=False,
        skipped=report,
        frames=frames,
        num_frames=num_frames,
        pooling=pooling_name(blocks),
    )
    if len(report):
        warnings.warn(f"read_tfrecords skipped bad records:\n{report.summary()}", stacklevel=2)
    return videos
