"""Vectorised decoding of many video-level ``tf.train.Example`` records at once.

Decoding record by record in Python costs ~15 us a record, slower than TensorFlow's C++ parser.
But YouTube-8M records are all written the same way, so this module parses a whole batch of
records *in lockstep* with NumPy: step k of the protobuf parse (read a tag, a length, a key) is
one array operation over every record. The cost per batch is a few hundred NumPy calls whatever
the number of records, and the feature rows are copied with one strided gather.

Exactness: only the canonical encoding is accepted here (what TensorFlow and our writer emit):

    Example  = 0x0A len(Features) Features [0x12 0x00]      (the trailing empty field 2 is in the
                                                             real 2018 shards; protobuf ignores it)
    Features = entries 0x0A len (0x0A len key) (0x12 len Feature), in any order, one each of
               id or video_id, [labels], mean_rgb, mean_audio (ASCII keys)
    Feature  = tag len 0x0A len payload                      (one list holding one field-1 chunk:
               tag 0x0A bytes / 0x12 float / 0x1A int64       packed data or the single value)

with lengths up to 3-byte varints, ids with one non-empty value, ``mean_rgb``/``mean_audio`` of
exactly ``rgb_dim``/``audio_dim`` (1024/128) floats and ``labels`` absent or packed. Every byte
of that structure is checked, so an accepted record is valid protobuf. Any record that differs
in any way (other or repeated features, unknown fields, unpacked lists, a wrong length, a missing
feature, malformed bytes, a negative label) is *not* decoded here but flagged, and the reader
decodes it with the general parser in :mod:`.wire`, which also says what is wrong with it. For
accepted records the two paths give identical results (tested, also on randomly damaged records).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

_NAMES = {"id": b"id", "video_id": b"video_id", "labels": b"labels", "mean_rgb": b"mean_rgb",
          "mean_audio": b"mean_audio"}
MAX_ENTRIES = 32  # more features than this in one record: left to the general parser


@dataclass
class FastVideoRecords:
    """Result of :func:`decode_video_records` for ``n`` records (arrays of length ``n``).

    Only rows with ``ok`` hold meaningful values; the others must be decoded by the general parser.
    """

    ok: np.ndarray  # bool: decoded here
    video_id_key: np.ndarray  # bool: the id came from "video_id" (2017) rather than "id"
    id_start: np.ndarray  # int64 byte offsets of the id value in the file buffer
    id_end: np.ndarray
    rgb_start: np.ndarray  # offset of the 1024 packed floats
    audio_start: np.ndarray  # offset of the 128 packed floats
    label_counts: np.ndarray  # int64 labels per record
    label_values: np.ndarray  # int64 [sum(label_counts)] labels of the ok records, in record order


def _varint(b: np.ndarray, pos: np.ndarray, limit: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode a varint of at most 3 bytes at each ``pos`` (must end by ``limit``).

    Returns ``(value, next_pos, ok)``; ``ok`` is False where the varint is longer than 3 bytes
    or runs past ``limit`` (those records go to the general parser).
    """
    last = len(b) - 1
    b0 = b[np.minimum(pos, last)].astype(np.int64)
    one = b0 < 0x80
    if one.all():  # the usual case: the same field has a one-byte length in every record
        nxt = pos + 1
        return b0, nxt, (pos >= 0) & (nxt <= limit)
    b1 = b[np.minimum(pos + 1, last)].astype(np.int64)
    two = ~one & (b1 < 0x80)
    if (one | two).all():
        nxt = pos + np.where(one, 1, 2)
        value = np.where(one, b0, (b0 & 0x7F) | (b1 << 7))
        return value, nxt, (pos >= 0) & (nxt <= limit)
    b2 = b[np.minimum(pos + 2, last)].astype(np.int64)
    three = ~one & ~two & (b2 < 0x80)
    value = np.where(one, b0, np.where(two, (b0 & 0x7F) | (b1 << 7), (b0 & 0x7F) | ((b1 & 0x7F) << 7) | (b2 << 14)))
    nxt = pos + np.where(one, 1, np.where(two, 2, 3))
    return value, nxt, (one | two | three) & (pos >= 0) & (nxt <= limit)


def _at(b: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """``b[pos]`` for ``pos >= -1``; positions past the end are clamped (and -1, a missing span,
    reads the last byte): their records are rejected by the bounds checks anyway."""
    return b[np.minimum(pos, len(b) - 1)]


def _single_chunk(b: np.ndarray, start: np.ndarray, end: np.ndarray, tag: int) -> tuple[np.ndarray, np.ndarray]:
    """Feature ``[start, end)`` == ``tag len 0x0A len chunk`` exactly? Returns ``(chunk_start, ok)``."""
    ok = (start >= 0) & (end - start >= 4) & (_at(b, start) == tag)
    length, p, good = _varint(b, start + 1, end)
    ok &= good & (p + length == end) & (_at(b, p) == 0x0A)
    length, q, good = _varint(b, p + 1, end)
    ok &= good & (q + length == end)
    return q, ok


def _packed_varints(b: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Decode packed varint lists ``[start_i, end_i)`` of all records together.

    Returns ``(counts, values, ok)``. ``ok`` is False for a list that does not end on a varint
    boundary or holds a varint of 10 bytes (a negative int64); such lists are left out of
    ``values`` so they cannot bleed into the next record's list.
    """
    n = len(start)
    ok = np.ones(n, bool)
    while True:
        lens = np.where(ok, end - start, 0)
        seg_end = np.cumsum(lens)
        total = int(seg_end[-1]) if n else 0
        if total == 0:
            return np.zeros(n, np.int64), np.zeros(0, np.int64), ok
        seg_start = seg_end - lens
        # byte k of the concatenation comes from file offset start_i + (k - seg_start_i)
        pos = np.repeat(start - seg_start, lens) + np.arange(total)
        v = b[pos]
        term = v < 0x80
        nonempty = lens > 0
        bad = nonempty & ~term[np.maximum(seg_end - 1, 0)]
        ends = np.flatnonzero(term)
        starts = np.empty_like(ends)
        starts[:1] = 0
        starts[1:] = ends[:-1] + 1
        long = (ends - starts) >= 9  # 10+ bytes: beyond int64's positive range
        if long.any():
            owner = np.searchsorted(seg_end, ends[long], side="right")
            bad[owner] = True
        if bad.any():
            ok &= ~bad
            continue
        shift = (np.arange(total) - np.repeat(starts, ends - starts + 1)) * 7
        values = np.add.reduceat((v & 0x7F).astype(np.int64) << shift, starts)
        cterm = np.concatenate([[0], np.cumsum(term)])
        counts = cterm[seg_end] - cterm[seg_start]
        return counts.astype(np.int64), values, ok


def decode_video_records(buf_array: np.ndarray, starts: np.ndarray, lengths: np.ndarray,
                         rgb_dim: int = 1024, audio_dim: int = 128) -> FastVideoRecords:
    """Decode the canonically encoded records among ``[starts_i, starts_i + lengths_i)``.

    Args:
        buf_array: the file(s) as uint8 ``[bytes]``.
        starts, lengths: int64 ``[n]`` payload spans of the records (CRC-checked already).
        rgb_dim, audio_dim: the float counts ``mean_rgb`` and ``mean_audio`` must have.

    Returns:
        :class:`FastVideoRecords`; rows with ``ok == False`` need the general parser.
    """
    b = buf_array
    n = len(starts)
    end = starts + lengths
    ok = (lengths >= 2) & (_at(b, starts) == 0x0A)
    flen, fstart, good = _varint(b, starts + 1, end)
    fend = fstart + flen
    ok &= good & (fend <= end)
    rest = end - fend
    ok &= (rest == 0) | ((rest == 2) & (_at(b, fend) == 0x12) & (_at(b, fend + 1) == 0x00))

    # Walk the map entries of all records in lockstep: iteration k reads every record's k-th entry.
    found: list[tuple[np.ndarray, ...]] = []  # (record, key_start, key_len, value_start, value_end)
    pos = fstart.copy()
    for _ in range(MAX_ENTRIES):
        rows = np.flatnonzero(ok & (pos < fend))
        if not len(rows):
            break
        p, lim = pos[rows], fend[rows]
        good = _at(b, p) == 0x0A
        elen, q, g = _varint(b, p + 1, lim)
        entry_end = q + elen
        good &= g & (entry_end <= lim) & (_at(b, q) == 0x0A)
        key_len = _at(b, q + 1).astype(np.int64)
        key_end = q + 2 + key_len
        good &= (key_len < 0x80) & (key_end < entry_end) & (_at(b, key_end) == 0x12)
        vlen, vstart, g = _varint(b, key_end + 1, entry_end)
        good &= g & (vstart + vlen == entry_end)
        ok[rows[~good]] = False
        found.append((rows[good], q[good] + 2, key_len[good], vstart[good], entry_end[good]))
        pos[rows] = entry_end
    ok &= pos >= fend  # records with more entries than MAX_ENTRIES go to the general parser
    if found:
        record, key_start, key_len, value_start, value_end = (np.concatenate(c) for c in zip(*found))
    else:
        record = key_start = key_len = value_start = value_end = np.zeros(0, np.int64)
    # Match all keys at once against the names we need (zero-padded to the longest name).
    width = max(len(raw) for raw in _NAMES.values())
    keys = _at(b, key_start[:, None] + np.arange(width))
    keys[np.arange(width) >= key_len[:, None]] = 0
    # Keys must be UTF-8 (protobuf strings): ASCII keys up to `width` bytes are checked here, any
    # other key sends its record to the general parser, which checks it properly.
    plain = (key_len <= width) & (keys < 0x80).all(axis=1)
    ok[record[~plain]] = False
    spans = {}
    known = np.zeros(len(record), bool)
    for name, raw in _NAMES.items():
        pattern = np.zeros(width, np.uint8)
        pattern[: len(raw)] = np.frombuffer(raw, np.uint8)
        hit = np.flatnonzero((key_len == len(raw)) & (keys == pattern).all(axis=1))
        known[hit] = True
        # A key repeated within a record is legal (the last entry wins) but rare: general parser.
        repeated = np.bincount(record[hit], minlength=n) > 1
        ok &= ~repeated
        start_, end_ = np.full(n, -1, np.int64), np.full(n, -1, np.int64)
        start_[record[hit]] = value_start[hit]
        end_[record[hit]] = value_end[hit]
        spans[name] = (start_, end_)
    # Every entry's value must be validated (protobuf parses the whole map); here only the
    # features we decode are, so a record with any other entry goes to the general parser.
    ok[record[~known]] = False

    has_id = spans["id"][0] >= 0
    video_id_key = ~has_id & (spans["video_id"][0] >= 0)
    ok &= ~(has_id & (spans["video_id"][0] >= 0))  # both: the unused one needs checking too
    id_span_start = np.where(has_id, spans["id"][0], spans["video_id"][0])
    id_span_end = np.where(has_id, spans["id"][1], spans["video_id"][1])
    id_start, good = _single_chunk(b, id_span_start, id_span_end, 0x0A)
    ok &= good & (id_span_end > id_start)
    rgb_start, good = _single_chunk(b, *spans["mean_rgb"], 0x12)
    ok &= good & (spans["mean_rgb"][1] - rgb_start == 4 * rgb_dim)
    audio_start, good = _single_chunk(b, *spans["mean_audio"], 0x12)
    ok &= good & (spans["mean_audio"][1] - audio_start == 4 * audio_dim)
    has_labels = spans["labels"][0] >= 0
    label_start, good = _single_chunk(b, *spans["labels"], 0x1A)
    ok &= ~has_labels | good
    label_start = np.where(ok & has_labels, label_start, 0)
    label_end = np.where(ok & has_labels, spans["labels"][1], 0)
    counts, values, good = _packed_varints(b, label_start, label_end)  # values skip the lists not good
    ok &= good
    return FastVideoRecords(ok=ok, video_id_key=video_id_key, id_start=id_start, id_end=id_span_end,
                            rgb_start=rgb_start, audio_start=audio_start, label_counts=np.where(ok, counts, 0),
                            label_values=values)


def gather_rows(buf_array: np.ndarray, offsets: np.ndarray, count: int) -> np.ndarray:
    """float32 ``[len(offsets), count]``: ``count`` little-endian floats at each byte offset.

    One strided gather (each row a contiguous copy), bit-exact, offsets need not be aligned.
    """
    width = 4 * count
    if not len(offsets):
        return np.zeros((0, count), np.float32)
    windows = as_strided(buf_array, shape=(len(buf_array) - width + 1, width), strides=(1, 1), writeable=False)
    return windows[offsets].view("<f4").astype(np.float32, copy=False)
