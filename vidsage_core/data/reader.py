"""Read YouTube-8M TFRecords (video- or frame-level) into a :class:`VideoSet`, without TensorFlow.

The framing (:mod:`.tfrecord`) and the protobuf decoding are our own, so reading needs neither
TensorFlow nor its start-up time, and features are bit-identical to ``tf.io.parse_example`` (a
test checks that on a real shard). Video-level files are read in batches of ~8 MB; the records of
a batch are decoded together by the vectorised :mod:`.fastpath`, and any record it does not take
(anything but the canonical encoding) by the general per-record decoder of :mod:`.wire`.
Frame-level records always take the general decoder.

Every bad record is either raised (``on_error="raise"``) or skipped and listed in
:attr:`VideoSet.skipped` (``on_error="skip"``): the checks run per batch, and errors are
reported in file and record order.
"""

from __future__ import annotations

import functools
import glob as globlib
import os
import threading
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vidsage_core.data import fastpath, wire
from vidsage_core.data.tfrecord import HEADER_BYTES, TFRecordError, frame_records, iter_tfrecord
from vidsage_core.data.videoset import SkipReport, VideoSet, csr_from_counts

RGB_DIM = 1024  # Inception (PCA-reduced) frame feature size
AUDIO_DIM = 128  # VGGish audio feature size
# The id feature's name decides the release, and so the label vocabulary.
NUM_CLASSES_BY_ID_KEY = {"id": 3862, "video_id": 4716}  # 2018 (v2/v3), 2017 (v1)
_F32 = np.dtype("<f4")  # TFRecord floats are little-endian float32

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


# ----------------------------------------------------------------------------- record decoders


def _id_of(rec: bytes, feats: dict[bytes, tuple[int, int]]) -> tuple[str, str]:
    if b"id" in feats:
        key = "id"
    elif b"video_id" in feats:
        key = "video_id"
    else:
        raise _RecordError(MISSING_FEATURE, "no 'id' (2018) or 'video_id' (2017) feature")
    span = feats[key.encode()]
    value = wire.single_payload(rec, span[0], span[1], wire.BYTES_LIST)
    if value is None:
        kind, spans = wire.feature_kind(rec, *span)
        if kind != wire.BYTES_LIST:
            raise _RecordError(WRONG_TYPE, f"{key!r} is {wire.KIND_NAMES[kind]}, expected bytes_list")
        values = wire.bytes_values(rec, spans)
        if len(values) != 1:
            raise _RecordError(WRONG_LENGTH, f"{key!r} has {len(values)} values, expected 1")
        value = values[0]
    s, e = value
    if s == e:
        raise _RecordError(BAD_ID, f"empty {key!r}")
    try:
        return key, rec[s:e].decode("utf-8")
    except UnicodeDecodeError:
        raise _RecordError(BAD_ID, f"{key!r} is not UTF-8: {rec[s:e][:32]!r}") from None


def _labels_of(rec: bytes, feats: dict[bytes, tuple[int, int]]) -> list[int]:
    span = feats.get(b"labels")
    if span is None:
        return []
    packed = wire.single_payload(rec, span[0], span[1], wire.INT64_LIST)
    if packed is not None:
        return wire.packed_int64(rec, *packed)
    kind, spans = wire.feature_kind(rec, *span)
    if kind == wire.INT64_LIST:
        return wire.int64_values(rec, spans)
    if kind == 0:
        return []
    raise _RecordError(WRONG_TYPE, f"'labels' is {wire.KIND_NAMES[kind]}, expected int64_list")


def _floats_of(rec: bytes, feats: dict[bytes, tuple[int, int]], name: bytes, dim: int) -> np.ndarray:
    span = feats.get(name)
    if span is None:
        # Parsed as an Example, a SequenceExample shows only its context (id, labels).
        hint = " (a frame-level SequenceExample? use level='frame')" if b"mean_audio" not in feats else ""
        raise _RecordError(MISSING_FEATURE, f"no {name.decode()!r} feature{hint}")
    packed = wire.single_payload(rec, span[0], span[1], wire.FLOAT_LIST)
    if packed is not None and packed[1] - packed[0] == 4 * dim:
        return np.frombuffer(rec, _F32, dim, packed[0])
    kind, spans = wire.feature_kind(rec, *span)
    if kind != wire.FLOAT_LIST and kind != 0:
        raise _RecordError(WRONG_TYPE, f"{name.decode()!r} is {wire.KIND_NAMES[kind]}, expected float_list")
    values = wire.float_values(rec, spans)
    if values.shape[0] != dim:
        raise _RecordError(WRONG_LENGTH, f"{name.decode()!r} has {values.shape[0]} floats, expected {dim}")
    return values


def _decode_video(rec: bytes, rgb_dim: int = RGB_DIM, audio_dim: int = AUDIO_DIM
                  ) -> tuple[str, str, list[int], np.ndarray, np.ndarray, None]:
    feats = wire.parse_example(rec)
    if feats is None:
        raise _RecordError(NOT_EXAMPLE, "no Example.features field")
    key, vid = _id_of(rec, feats)
    return (key, vid, _labels_of(rec, feats), _floats_of(rec, feats, b"mean_rgb", rgb_dim),
            _floats_of(rec, feats, b"mean_audio", audio_dim), None)


def _frames_of(rec: bytes, lists: dict[bytes, tuple[int, int]], name: bytes, dim: int) -> np.ndarray:
    span = lists.get(name)
    if span is None:
        raise _RecordError(MISSING_FEATURE, f"no {name.decode()!r} feature list")
    q = wire.bytes_frames(rec, *span)
    if q is None:  # not the regular layout: decode step by step (same result, slower)
        steps = []
        for s, e in wire.feature_list_spans(rec, *span):
            kind, spans = wire.feature_kind(rec, s, e)
            if kind != wire.BYTES_LIST:
                raise _RecordError(WRONG_TYPE, f"a {name.decode()!r} frame is {wire.KIND_NAMES[kind]}, expected bytes")
            values = wire.bytes_values(rec, spans)
            if len(values) != 1:
                raise _RecordError(WRONG_LENGTH, f"a {name.decode()!r} frame has {len(values)} values, expected 1")
            steps.append(rec[values[0][0] : values[0][1]])
        lengths = {len(b) for b in steps}
        if lengths - {dim}:
            raise _RecordError(WRONG_LENGTH, f"{name.decode()!r} frames of {sorted(lengths)} bytes, expected {dim}")
        q = np.frombuffer(b"".join(steps), np.uint8).reshape(len(steps), dim)
    elif q.shape[1] != dim:
        raise _RecordError(WRONG_LENGTH, f"{name.decode()!r} frames of {q.shape[1]} bytes, expected {dim}")
    return q


def _frame_decoder(max_frames: int, blocks: list[tuple[str, int]], keep_frames: bool,
                   rgb_dim: int = RGB_DIM, audio_dim: int = AUDIO_DIM
                   ) -> Callable[[bytes], tuple[str, str, list[int], np.ndarray, np.ndarray, np.ndarray | None]]:
    def decode(rec: bytes):
        parsed = wire.parse_sequence_example(rec)
        if parsed is None:
            raise _RecordError(NOT_EXAMPLE, "no SequenceExample.context or feature_lists field")
        context, lists = parsed
        key, vid = _id_of(rec, context)
        labels = _labels_of(rec, context)
        rgb_q = _frames_of(rec, lists, b"rgb", rgb_dim)
        audio_q = _frames_of(rec, lists, b"audio", audio_dim)
        if rgb_q.shape[0] != audio_q.shape[0]:
            raise _RecordError(WRONG_LENGTH, f"{rgb_q.shape[0]} rgb frames but {audio_q.shape[0]} audio frames")
        if rgb_q.shape[0] == 0:
            raise _RecordError(NO_FRAMES, "zero frames")
        rgb_q, audio_q = rgb_q[:max_frames], audio_q[:max_frames]  # YouTube-8M keeps the first max_frames
        frames = None
        if keep_frames:
            frames = np.concatenate([dequantize(rgb_q), dequantize(audio_q)], axis=1).astype(np.float16)
        return key, vid, labels, pool_frames(rgb_q, blocks), pool_frames(audio_q, blocks), frames

    return decode


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

    @staticmethod
    def merge(a: "_Rows", b: "_Rows") -> "_Rows":
        """Both sets of rows, in (file, record) order."""
        if not len(b.ids):
            return a
        if not len(a.ids):
            return b
        both = _Rows(
            file=np.concatenate([a.file, b.file]), index=np.concatenate([a.index, b.index]),
            offset=np.concatenate([a.offset, b.offset]),
            video_id_key=np.concatenate([a.video_id_key, b.video_id_key]), ids=a.ids + b.ids,
            label_counts=np.concatenate([a.label_counts, b.label_counts]),
            label_values=np.concatenate([a.label_values, b.label_values]),
            rgb=np.concatenate([a.rgb, b.rgb]), audio=np.concatenate([a.audio, b.audio]),
            frames=None if a.frames is None else a.frames + b.frames,
        )
        return both.take(np.lexsort((both.index, both.file)))


# (file number, record index, reason, detail, byte offset of the record in its file)
_Error = tuple[int, int, str, str, int | None]


@dataclass
class _Spans:
    """The intact records of a batch of files held in one buffer."""

    file: np.ndarray  # int64 [n]: file number
    index: np.ndarray  # int64 [n]: record index within the file
    start: np.ndarray  # int64 [n]: payload offset in the batch buffer
    length: np.ndarray  # int64 [n]: payload bytes
    base: np.ndarray  # int64 [n]: offset of the record's file in the batch buffer

    def header_offset(self) -> np.ndarray:
        """Byte offset of each record's header within its own file."""
        return self.start - HEADER_BYTES - self.base


def _decode_records(buf: memoryview, spans: _Spans, rows: np.ndarray, decode: Callable, widths: tuple[int, int],
                    errors: list[_Error]) -> _Rows:
    """The general path: decode records ``rows`` of ``spans`` one by one with :mod:`.wire` (any valid encoding)."""
    n = len(rows)
    rgb = np.empty((n, widths[0]), np.float32)
    audio = np.empty((n, widths[1]), np.float32)
    kept, video_id_key, ids, labels, frames = [], [], [], [], []
    header = spans.header_offset()
    for r in rows.tolist():
        start = int(spans.start[r])
        rec = bytes(buf[start : start + int(spans.length[r])])
        try:
            key, vid, labs, x_rgb, x_audio, fr = decode(rec)
        except _RecordError as e:
            errors.append((int(spans.file[r]), int(spans.index[r]), e.reason, e.detail, int(header[r])))
            continue
        except (wire.WireError, IndexError) as e:
            detail = "truncated protobuf" if isinstance(e, IndexError) else str(e)
            errors.append((int(spans.file[r]), int(spans.index[r]), NOT_EXAMPLE,
                           f"not a valid protobuf message: {detail}", int(header[r])))
            continue
        k = len(ids)
        rgb[k] = x_rgb
        audio[k] = x_audio
        kept.append(r)
        video_id_key.append(key == "video_id")
        ids.append(vid)
        labels.append(labs)
        frames.append(fr)
    k = len(ids)
    kept_rows = np.array(kept, np.int64)
    return _Rows(
        file=spans.file[kept_rows], index=spans.index[kept_rows], offset=header[kept_rows],
        video_id_key=np.array(video_id_key, bool), ids=ids,
        label_counts=np.array([len(x) for x in labels], np.int64),
        label_values=np.array([v for x in labels for v in x], np.int64),
        rgb=rgb[:k], audio=audio[:k],
        frames=frames if frames and frames[0] is not None else None,
    )


def _decode_video_batch(buf: memoryview, spans: _Spans, decode: Callable, dims: tuple[int, int],
                        errors: list[_Error]) -> _Rows:
    """Video level: the vectorised path for canonical records, ``decode`` (general) for the rest."""
    b = np.frombuffer(buf, np.uint8)
    fast = fastpath.decode_video_records(b, spans.start, spans.length, *dims)
    ok_rows = np.flatnonzero(fast.ok)
    id_slices = list(map(slice, fast.id_start[ok_rows].tolist(), fast.id_end[ok_rows].tolist()))
    good = np.ones(len(ok_rows), bool)
    try:  # all in C: no Python frame per record
        ids = list(map(str, map(buf.__getitem__, id_slices), repeat("utf-8")))
    except UnicodeDecodeError:  # some id is not UTF-8: find which; the general path reports it
        ids = []
        for j, sl in enumerate(id_slices):
            try:
                ids.append(str(buf[sl], "utf-8"))
            except UnicodeDecodeError:
                good[j] = False
                ids.append("")
    rows = _Rows(
        file=spans.file[ok_rows], index=spans.index[ok_rows], offset=spans.header_offset()[ok_rows],
        video_id_key=fast.video_id_key[ok_rows], ids=ids, label_counts=fast.label_counts[ok_rows],
        label_values=fast.label_values,
        rgb=fastpath.gather_rows(b, fast.rgb_start[ok_rows], dims[0]),
        audio=fastpath.gather_rows(b, fast.audio_start[ok_rows], dims[1]), frames=None,
    )
    slow = ~fast.ok
    if not good.all():
        slow[ok_rows[~good]] = True
        rows = rows.take(np.flatnonzero(good))
    if not slow.any():
        return rows
    rest = _decode_records(buf, spans, np.flatnonzero(slow), decode, dims, errors)
    return _Rows.merge(rows, rest)


@dataclass
class _State:
    """What the reader accumulates across files."""

    on_error: str
    num_classes: int | None
    require_labels: bool
    report: SkipReport
    id_key: str | None = None  # "id" or "video_id" of the first valid record
    id_key_where: str = ""
    seen: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> (file number, record index)
    files: list[str] = field(default_factory=list)
    kept: list[_Rows] = field(default_factory=list)  # rows kept (features moved to out_* when given)
    out_rgb: np.ndarray | None = None  # video level: preallocated [capacity, 1024] result rows
    out_audio: np.ndarray | None = None
    filled: int = 0  # rows of out_* written


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
    candidates = np.flatnonzero(keep).tolist()
    fresh = dict(zip([rows.ids[r] for r in candidates],
                     zip(rows.file[candidates].tolist(), rows.index[candidates].tolist())))
    if len(fresh) == len(candidates) and seen.keys().isdisjoint(fresh):
        seen.update(fresh)  # the usual case, without a Python step per record
    else:
        for r in candidates:
            vid = rows.ids[r]
            first_seen = seen.get(vid)
            if first_seen is not None:
                keep[r] = False
                err(r, DUPLICATE_ID, f"id {vid!r} already read from {files[first_seen[0]]} record {first_seen[1]}; "
                                     "the first is kept")
            else:
                seen[vid] = (int(rows.file[r]), int(rows.index[r]))
    unlabelled = int((keep & ~labelled).sum())
    if unlabelled:
        state.report.note("unlabelled", unlabelled)
    return keep


# Video-level files are read this many bytes at a time into one buffer, so that the vectorised
# decoder's fixed cost per call is spread over ~1,800 records while the buffer and the gathered
# rows stay cache-sized.
BATCH_BYTES = 8 << 20


def _max_videos(files: list[Path], rgb_dim: int, audio_dim: int) -> int:
    """Upper bound on the video-level records the files can hold: a kept record has at least
    ``4 * (rgb_dim + audio_dim)`` bytes of floats (4608 for YouTube-8M) plus 16 of framing."""
    return sum(p.stat().st_size for p in files) // (4 * (rgb_dim + audio_dim) + HEADER_BYTES + 4)
_scratch = threading.local()  # per-thread read buffer, reused across calls (no page faults each time)


def _buffer(size: int) -> memoryview:
    """A buffer for one batch: the reused per-thread one, or a fresh one for a bigger (single) file."""
    if size > BATCH_BYTES:
        return memoryview(np.empty(size, np.uint8))
    buf = getattr(_scratch, "buf", None)
    if buf is None:
        buf = _scratch.buf = np.empty(BATCH_BYTES, np.uint8)
    return memoryview(buf)[:size]


def _read_batch(batch: list[tuple[Path, int]], decode: Callable, widths: tuple[int, int], state: _State,
                vectorised: bool) -> int:
    """Read a batch of non-empty files; return the videos kept.

    ``vectorised``: video level, decoded by :mod:`.fastpath` with ``decode`` as the fallback.
    """
    buf = _buffer(sum(size for _, size in batch))
    errors: list[_Error] = []
    parts = []
    base = 0
    for path, size in batch:
        number = len(state.files)
        state.files.append(str(path))
        state.report.files_read += 1
        with open(path, "rb", buffering=0) as f:
            got = 0
            while got < size:  # readinto may return less than asked
                n = f.readinto(buf[base + got : base + size])
                if not n:
                    raise OSError(f"{path}: file shrank while being read ({got} of {size} bytes)")
                got += n
        spans, framing = frame_records(buf[base : base + size])
        errors.extend((number, e.index, e.reason, e.detail, e.offset) for e in framing)
        state.report.records_read += len(spans) + len(framing)
        table = np.array(spans, np.int64).reshape(-1, 3)
        parts.append((np.full(len(table), number, np.int64), table, np.full(len(table), base, np.int64)))
        base += size
    number, table, bases = (np.concatenate(x) for x in zip(*parts))
    spans = _Spans(file=number, index=table[:, 0], start=table[:, 1] + bases, length=table[:, 2], base=bases)
    if vectorised:
        rows = _decode_video_batch(buf, spans, decode, widths, errors)
    else:
        rows = _decode_records(buf, spans, np.arange(len(table)), decode, widths, errors)
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
    if state.out_rgb is not None:  # straight into the result while the rows are still in cache
        m = len(rows.ids)
        if state.filled + m > len(state.out_rgb):  # only if a file grew after it was sized
            grow = max(m, len(state.out_rgb) // 2)
            state.out_rgb = np.concatenate([state.out_rgb, np.empty((grow, widths[0]), np.float32)])
            state.out_audio = np.concatenate([state.out_audio, np.empty((grow, widths[1]), np.float32)])
        state.out_rgb[state.filled : state.filled + m] = rows.rgb
        state.out_audio[state.filled : state.filled + m] = rows.audio
        state.filled += m
        rows.rgb = rows.audio = None
    state.kept.append(rows)
    return len(rows.ids)


def _batches(files: list[Path], limit: int, report: SkipReport) -> Iterator[list[tuple[Path, int]]]:
    """Group non-empty files into batches of about ``limit`` bytes (empty files: warned and noted)."""
    batch: list[tuple[Path, int]] = []
    size = 0
    for path in files:
        n = path.stat().st_size
        if n == 0:
            warnings.warn(f"{path}: empty TFRecord file, read as zero records", stacklevel=3)
            report.note("empty_files")
            report.files_read += 1
            continue
        if batch and size + n > limit:
            yield batch
            batch, size = [], 0
        batch.append((path, n))
        size += n
    if batch:
        yield batch


def _stack(parts: list[np.ndarray], width: int) -> np.ndarray:
    """Rows of all files as one array (no copy for a single file)."""
    if len(parts) == 1:
        return parts[0]
    return np.concatenate(parts) if parts else np.zeros((0, width), np.float32)


def _describe(spec: Any, files: list[Path]) -> str:
    if isinstance(spec, (str, os.PathLike)):
        return str(spec)
    if len(files) <= 3:
        return ", ".join(str(f) for f in files)
    return f"{len(files)} files: {files[0]} ... {files[-1]}"


def detect_dims(files: Sequence[Path], level: str = "video") -> tuple[int, int]:
    """``(rgb_dim, audio_dim)`` of the first record of the first non-empty file.

    Video level: the lengths of ``mean_rgb`` / ``mean_audio``; frame level: the byte length of
    the first ``rgb`` / ``audio`` frame. YouTube-8M's sizes (1024, 128) when nothing is found.
    """
    for path in files:
        try:
            rec = next(iter(iter_tfrecord(path)), None)
        except (OSError, ValueError):  # unreadable here: the reader proper reports it
            continue
        if rec is None:
            continue
        try:
            if level == "video":
                feats = wire.parse_example(rec) or {}
                dims = []
                for key, default in ((b"mean_rgb", RGB_DIM), (b"mean_audio", AUDIO_DIM)):
                    if key not in feats:
                        dims.append(default)
                        continue
                    _, spans = wire.feature_kind(rec, *feats[key])
                    dims.append(len(wire.float_values(rec, spans)))
                return dims[0], dims[1]
            parsed = wire.parse_sequence_example(rec)
            lists = parsed[1] if parsed else {}
            dims = []
            for key, default in ((b"rgb", RGB_DIM), (b"audio", AUDIO_DIM)):
                frames = wire.bytes_frames(rec, *lists[key]) if key in lists else None
                dims.append(int(frames.shape[1]) if frames is not None and len(frames) else default)
            return dims[0], dims[1]
        except (wire.WireError, IndexError):  # malformed: the reader proper reports it
            continue
    return RGB_DIM, AUDIO_DIM


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
    rgb_dim: int | None = RGB_DIM,
    audio_dim: int | None = AUDIO_DIM,
) -> VideoSet:
    """Read YouTube-8M TFRecords into a :class:`VideoSet`.

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
        rgb_dim, audio_dim: feature sizes every record must have (YouTube-8M: 1024 and 128; e.g.
            1280 for files written by ``vidsage ingest`` with EfficientNet features). The pooled
            widths and ``frames`` (``rgb_dim + audio_dim``) follow them. ``None``: take the
            size from the first record found (every later record must agree).

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
    files = resolve_paths(paths_or_glob)
    if rgb_dim is None or audio_dim is None:
        found = detect_dims(files, level)
        rgb_dim = found[0] if rgb_dim is None else rgb_dim
        audio_dim = found[1] if audio_dim is None else audio_dim
    if rgb_dim < 1 or audio_dim < 1:
        raise ValueError(f"rgb_dim and audio_dim must be positive, got {rgb_dim}, {audio_dim}")
    blocks = parse_pooling(pooling, top_k)
    if level == "video":
        if blocks != [("mean", 1)]:
            raise ValueError(f"video-level records are already frame means; pooling={pooling!r} needs level='frame'")
        if keep_frames:
            raise ValueError("keep_frames=True needs level='frame' (video-level records hold no frames)")
        decode = functools.partial(_decode_video, rgb_dim=rgb_dim, audio_dim=audio_dim)
    else:
        decode = _frame_decoder(max_frames, blocks, keep_frames, rgb_dim, audio_dim)
    width = sum(k for _, k in blocks)
    widths = (rgb_dim * width, audio_dim * width)
    report = SkipReport()
    state = _State(on_error=on_error, num_classes=num_classes, require_labels=require_labels, report=report)
    vectorised = level == "video"
    if vectorised:  # rows go straight into the result arrays, sized by an upper bound
        capacity = _max_videos(files, rgb_dim, audio_dim)
        state.out_rgb = np.empty((capacity, rgb_dim), np.float32)
        state.out_audio = np.empty((capacity, audio_dim), np.float32)
    bar = tqdm(total=len(files), desc=f"reading {level}-level TFRecords", unit="file", disable=not progress)
    kept = 0
    # Frame-level files are big and decoded record by record anyway: one file per batch.
    limit = BATCH_BYTES if vectorised else 1
    for batch in _batches(files, limit, report):
        kept += _read_batch(batch, decode, widths, state, vectorised)
        bar.update(len(batch))
        if progress:
            bar.set_postfix(videos=kept, skipped=len(report))
    bar.close()

    resolved_classes = num_classes or NUM_CLASSES_BY_ID_KEY[state.id_key or "id"]
    ids_flat = [v for rows in state.kept for v in rows.ids]
    labels = csr_from_counts(np.concatenate([r.label_counts for r in state.kept] or [np.zeros(0, np.int64)]),
                             np.concatenate([r.label_values for r in state.kept] or [np.zeros(0, np.int64)]),
                             resolved_classes)
    frames = num_frames = None
    if keep_frames:
        kept_frames = [f for rows in state.kept for f in (rows.frames or [])]
        num_frames = np.array([f.shape[0] for f in kept_frames], np.int32)
        longest = int(num_frames.max()) if len(num_frames) else 0
        frames = np.zeros((len(kept_frames), longest, rgb_dim + audio_dim), np.float16)
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
