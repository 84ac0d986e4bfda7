"""Read YouTube-8M TFRecords (video- or frame-level) into a :class:`VideoSet`, without TensorFlow.

The framing (:mod:`.tfrecord`) and the protobuf decoding (:mod:`.wire`) are our own, so reading
needs neither TensorFlow nor its start-up time, and features are bit-identical to
``tf.io.parse_example`` (a test checks that on a real shard). Every bad record is either raised
(``on_error="raise"``) or skipped and listed in :attr:`VideoSet.skipped` (``on_error="skip"``).
"""

from __future__ import annotations

import glob as globlib
import os
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from vidsage_core.data import wire
from vidsage_core.data.tfrecord import HEADER_BYTES, TFRecordError, frame_records
from vidsage_core.data.videoset import SkipReport, VideoSet, labels_to_csr

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
            top = np.sort(q, axis=0)[::-1][:k]
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


def _decode_video(rec: bytes) -> tuple[str, str, list[int], np.ndarray, np.ndarray, None]:
    feats = wire.parse_example(rec)
    if feats is None:
        raise _RecordError(NOT_EXAMPLE, "no Example.features field")
    key, vid = _id_of(rec, feats)
    return (key, vid, _labels_of(rec, feats), _floats_of(rec, feats, b"mean_rgb", RGB_DIM),
            _floats_of(rec, feats, b"mean_audio", AUDIO_DIM), None)


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


def _frame_decoder(max_frames: int, blocks: list[tuple[str, int]], keep_frames: bool
                   ) -> Callable[[bytes], tuple[str, str, list[int], np.ndarray, np.ndarray, np.ndarray | None]]:
    def decode(rec: bytes):
        parsed = wire.parse_sequence_example(rec)
        if parsed is None:
            raise _RecordError(NOT_EXAMPLE, "no SequenceExample.context or feature_lists field")
        context, lists = parsed
        key, vid = _id_of(rec, context)
        labels = _labels_of(rec, context)
        rgb_q = _frames_of(rec, lists, b"rgb", RGB_DIM)
        audio_q = _frames_of(rec, lists, b"audio", AUDIO_DIM)
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


@dataclass
class _State:
    """What the reader accumulates across files."""

    on_error: str
    num_classes: int | None
    require_labels: bool
    report: SkipReport
    id_key: str | None = None  # "id" or "video_id" of the first valid record
    id_key_where: str = ""
    seen: dict[str, tuple[str, int]] = field(default_factory=dict)
    ids: list[list[str]] = field(default_factory=list)
    labels: list[list[list[int]]] = field(default_factory=list)
    rgb: list[np.ndarray] = field(default_factory=list)
    audio: list[np.ndarray] = field(default_factory=list)
    frames: list[np.ndarray] = field(default_factory=list)


def _read_file(path: Path, decode: Callable, widths: tuple[int, int], state: _State) -> int:
    """Read one file into ``state``; return the number of videos kept."""
    buf = path.read_bytes()
    name = str(path)
    if not buf:
        warnings.warn(f"{name}: empty TFRecord file, read as zero records", stacklevel=3)
        state.report.note("empty_files")
        return 0
    spans, framing = frame_records(buf)
    # errors: (record index, reason, detail, byte offset); sorted later so that "raise" reports
    # the first bad record of the file whatever check found it.
    errors: list[tuple[int, str, str, int | None]] = [(e.index, e.reason, e.detail, e.offset) for e in framing]
    state.report.records_read += len(spans) + len(framing)
    n = len(spans)
    rgb = np.empty((n, widths[0]), np.float32)
    audio = np.empty((n, widths[1]), np.float32)
    ids: list[str] = []
    keys: list[str] = []
    labels: list[list[int]] = []
    where: list[int] = []  # record index of each decoded row
    frames: list[np.ndarray | None] = []
    k = 0
    for index, start, length in spans:
        rec = buf[start : start + length]
        try:
            key, vid, labs, r, a, fr = decode(rec)
        except _RecordError as e:
            errors.append((index, e.reason, e.detail, start - HEADER_BYTES))
            continue
        except (wire.WireError, IndexError) as e:
            detail = "truncated protobuf" if isinstance(e, IndexError) else str(e)
            errors.append((index, NOT_EXAMPLE, f"not a valid protobuf message: {detail}", start - HEADER_BYTES))
            continue
        rgb[k] = r
        audio[k] = a
        ids.append(vid)
        keys.append(key)
        labels.append(labs)
        where.append(index)
        frames.append(fr)
        k += 1
    rgb, audio = rgb[:k], audio[:k]
    finite = np.isfinite(rgb).all(axis=1) & np.isfinite(audio).all(axis=1)
    keep = np.zeros(k, bool)
    offsets = {index: start - HEADER_BYTES for index, start, _ in spans}
    for row in range(k):
        index = where[row]
        if not finite[row]:
            bad = "mean_rgb" if not np.isfinite(rgb[row]).all() else "mean_audio"
            errors.append((index, NON_FINITE, f"NaN or inf in {bad!r}", offsets[index]))
            continue
        key = keys[row]
        if state.id_key is None:
            state.id_key, state.id_key_where = key, f"{name} record {index}"
        elif key != state.id_key and state.num_classes is None:
            raise ValueError(
                f"{name} record {index} uses the {key!r} key ({NUM_CLASSES_BY_ID_KEY[key]} classes) but "
                f"{state.id_key_where} uses {state.id_key!r} ({NUM_CLASSES_BY_ID_KEY[state.id_key]} classes): "
                "these are different label vocabularies; read them separately or pass num_classes"
            )
        num_classes = state.num_classes or NUM_CLASSES_BY_ID_KEY[key]
        labs = labels[row]
        if labs and (min(labs) < 0 or max(labs) >= num_classes):
            worst = min(labs) if min(labs) < 0 else max(labs)
            errors.append((index, LABEL_OUT_OF_RANGE, f"label {worst} outside [0, {num_classes})", offsets[index]))
            continue
        if not labs:
            if state.require_labels:
                errors.append((index, NO_LABELS, "no labels (require_labels=True)", offsets[index]))
                continue
        vid = ids[row]
        first = state.seen.get(vid)
        if first is not None:
            errors.append((index, DUPLICATE_ID,
                           f"id {vid!r} already read from {first[0]} record {first[1]}; the first is kept",
                           offsets[index]))
            continue
        state.seen[vid] = (name, index)
        if not labs:
            state.report.note("unlabelled")
        keep[row] = True
    if errors:
        errors.sort(key=lambda e: e[0])
        if state.on_error == "raise":
            index, reason, detail, offset = errors[0]
            raise TFRecordError(name, index, reason, detail, offset)
        for index, reason, detail, offset in errors:
            state.report.add(name, index, reason, detail, offset)
    if not keep.all():
        rows = np.flatnonzero(keep)
        rgb, audio = rgb[rows], audio[rows]
        ids = [ids[i] for i in rows]
        labels = [labels[i] for i in rows]
        frames = [frames[i] for i in rows]
    state.rgb.append(rgb)
    state.audio.append(audio)
    state.ids.append(ids)
    state.labels.append(labels)
    if frames and frames[0] is not None:
        state.frames.extend(frames)
    return len(ids)


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
    blocks = parse_pooling(pooling, top_k)
    if level == "video":
        if blocks != [("mean", 1)]:
            raise ValueError(f"video-level records are already frame means; pooling={pooling!r} needs level='frame'")
        if keep_frames:
            raise ValueError("keep_frames=True needs level='frame' (video-level records hold no frames)")
        decode = _decode_video
    else:
        decode = _frame_decoder(max_frames, blocks, keep_frames)
    width = sum(k for _, k in blocks)
    files = resolve_paths(paths_or_glob)
    report = SkipReport()
    state = _State(on_error=on_error, num_classes=num_classes, require_labels=require_labels, report=report)
    bar = tqdm(files, desc=f"reading {level}-level TFRecords", unit="file", disable=not progress)
    kept = 0
    for path in bar:
        report.files_read += 1
        kept += _read_file(path, decode, (RGB_DIM * width, AUDIO_DIM * width), state)
        bar.set_postfix(videos=kept, skipped=len(report))
    bar.close()

    resolved_classes = num_classes or NUM_CLASSES_BY_ID_KEY[state.id_key or "id"]
    ids_flat = [v for chunk in state.ids for v in chunk]
    labels_flat = [x for chunk in state.labels for x in chunk]
    frames = num_frames = None
    if keep_frames:
        num_frames = np.array([f.shape[0] for f in state.frames], np.int32)
        longest = int(num_frames.max()) if len(num_frames) else 0
        frames = np.zeros((len(state.frames), longest, RGB_DIM + AUDIO_DIM), np.float16)
        for i, f in enumerate(state.frames):
            frames[i, : f.shape[0]] = f
    videos = VideoSet(
        ids=np.array(ids_flat, dtype=str) if ids_flat else np.zeros(0, "<U1"),
        rgb=np.concatenate(state.rgb) if state.rgb else np.zeros((0, RGB_DIM * width), np.float32),
        audio=np.concatenate(state.audio) if state.audio else np.zeros((0, AUDIO_DIM * width), np.float32),
        labels=labels_to_csr(labels_flat, resolved_classes),
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
