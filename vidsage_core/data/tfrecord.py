"""TFRecord framing: read and write the container format without TensorFlow.

A TFRecord file is a sequence of records, each framed as::

    uint64 length (little-endian)
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)``. A data-CRC failure
damages one record only (the length is trusted, so reading continues with the next one); a
length-CRC failure loses the framing, so the rest of that file cannot be read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import crc32c
import numpy as np

_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
HEADER_BYTES = 12  # uint64 length + uint32 masked crc of the length
FOOTER_BYTES = 4  # uint32 masked crc of the data

# Reasons a record (or the rest of a file) is dropped; SkipReport counts by these names.
TRUNCATED = "truncated"  # the file ends inside a record
LENGTH_CRC = "length_crc"  # the length field is damaged: framing lost, rest of file unread
DATA_CRC = "data_crc"  # the record's payload is damaged


class TFRecordError(ValueError):
    """A damaged or invalid record; the message names the file, record index and byte offset.

    Attributes:
        file: path of the file.
        index: 0-based record index within the file.
        reason: short reason code (e.g. ``"data_crc"``, ``"wrong_length"``).
        offset: byte offset of the record's header in the file, or ``None``.
    """

    def __init__(self, file: str, index: int, reason: str, detail: str = "", offset: int | None = None):
        self.file = str(file)
        self.index = int(index)
        self.reason = reason
        self.offset = offset
        where = f"{self.file}: record {self.index}"
        if offset is not None:
            where += f" (byte offset {offset})"
        super().__init__(f"{where}: {reason}" + (f": {detail}" if detail else ""))


def masked_crc32c(data: bytes | memoryview) -> int:
    """TFRecord's masked CRC-32C of ``data``."""
    crc = crc32c.crc32c(data)
    return (((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF


@dataclass(frozen=True)
class FramingError:
    """A framing problem found while splitting a file into records."""

    index: int  # record index the problem belongs to
    offset: int  # byte offset of that record's header
    reason: str  # TRUNCATED, LENGTH_CRC or DATA_CRC
    detail: str


def _crc32c_table() -> np.ndarray:
    """Byte-wise lookup table of CRC-32C (Castagnoli, reflected polynomial 0x82F63B78)."""
    t = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        t = np.where(t & 1, (t >> 1) ^ np.uint32(0x82F63B78), t >> 1).astype(np.uint32)
    return t


_CRC_TABLE = _crc32c_table()


def _mask(crc: np.ndarray) -> np.ndarray:
    crc = crc.astype(np.uint64)
    return ((((crc >> 15) | (crc << 17)) + _MASK_DELTA) & 0xFFFFFFFF).astype(np.uint32)


def crc32c_rows(rows: np.ndarray) -> np.ndarray:
    """CRC-32C of each row of a uint8 ``[n, k]`` array, vectorised over rows (for short rows)."""
    crc = np.full(rows.shape[0], 0xFFFFFFFF, np.uint32)
    for k in range(rows.shape[1]):
        crc = _CRC_TABLE[(crc ^ rows[:, k]) & 0xFF] ^ (crc >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def _u32_at(b: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Little-endian uint32 at each (unaligned) byte offset."""
    return np.ascontiguousarray(b[offsets[:, None] + np.arange(4)]).view("<u4").ravel()


def frame_records(buf: bytes, verify_crc: bool = True) -> tuple[list[tuple[int, int, int]], list[FramingError]]:
    """Split the bytes of one TFRecord file into records.

    Args:
        buf: the whole file (bytes, mmap or any buffer).
        verify_crc: check both masked CRC-32Cs (disable only to measure their cost).

    Returns:
        ``(spans, errors)``: ``spans`` lists ``(index, data_start, data_length)`` for every record
        whose framing and data CRC are intact, in file order; ``errors`` lists the
        :class:`FramingError` of every damaged record (a data-CRC failure skips one record; a
        truncation or length-CRC failure ends the file, since nothing after it can be framed).
    """
    # Pass 1 walks the length chain (it is sequential) without checking anything; pass 2 checks
    # the CRCs of all records at once. The result is that of checking each record as it is met:
    # the walk after a record whose length fails its CRC is cut off at that record.
    size = len(buf)
    unpack = _LENGTH.unpack_from
    headers: list[int] = []
    lengths: list[int] = []
    pos = 0
    stop: tuple[str, int, int] | None = None  # ("header" | "data", offset, length)
    while pos < size:
        if size - pos < HEADER_BYTES:
            stop = ("header", pos, 0)
            break
        length = unpack(buf, pos)[0]
        end = pos + HEADER_BYTES + length + FOOTER_BYTES
        if end > size:
            stop = ("data", pos, length)
            break
        headers.append(pos)
        lengths.append(length)
        pos = end
    errors: list[FramingError] = []
    n = len(headers)
    if verify_crc and (n or (stop and stop[0] == "data")):
        b = np.frombuffer(buf, np.uint8)
        h = np.array(headers + ([stop[1]] if stop and stop[0] == "data" else []), np.int64)
        bad = _mask(crc32c_rows(b[h[:, None] + np.arange(8)])) != _u32_at(b, h + 8)
        if bad.any():
            first = int(np.argmax(bad))
            at = int(h[first])
            errors.append(FramingError(
                first, at, LENGTH_CRC,
                f"length field fails its CRC; framing lost, the last {size - at} bytes of the file are unread"))
            n = first
            stop = None
    if stop is not None:
        kind, at, length = stop
        detail = (f"{size - at} trailing bytes, a header needs 12" if kind == "header"
                  else f"record of {length} bytes needs {HEADER_BYTES + length + FOOTER_BYTES}, only {size - at} left")
        errors.append(FramingError(n, at, TRUNCATED, detail))
    starts = [p + HEADER_BYTES for p in headers[:n]]
    lengths = lengths[:n]
    keep = list(range(n))
    if verify_crc and n:
        s_arr = np.array(starts, np.int64)
        e_arr = s_arr + np.array(lengths, np.int64)
        # map() keeps the per-record loop in C: slice objects -> zero-copy views -> crc32c
        views = map(memoryview(buf).__getitem__, map(slice, starts, e_arr.tolist()))
        computed = np.fromiter(map(crc32c.crc32c, views), np.uint32, n)
        bad = _mask(computed) != _u32_at(np.frombuffer(buf, np.uint8), e_arr)
        if bad.any():
            data_errors = [FramingError(i, headers[i], DATA_CRC, f"payload of {lengths[i]} bytes fails its CRC")
                           for i in np.flatnonzero(bad).tolist()]
            errors = data_errors + errors
            keep = np.flatnonzero(~bad).tolist()
    return [(i, starts[i], lengths[i]) for i in keep], errors


def iter_tfrecord(path: str | os.PathLike) -> Iterator[bytes]:
    """Yield the payload of every record of one file, raising :class:`TFRecordError` on damage."""
    buf = Path(path).read_bytes()
    spans, errors = frame_records(buf)
    first_error = errors[0].index if errors else None
    for index, start, length in spans:
        if first_error is not None and index > first_error:
            break
        yield buf[start : start + length]
    if errors:
        e = errors[0]
        raise TFRecordError(str(path), e.index, e.reason, e.detail, e.offset)


def encode_record(data: bytes) -> bytes:
    """Frame one payload as a TFRecord record (header, data, footer)."""
    length = struct.pack("<Q", len(data))
    return b"".join(
        (length, struct.pack("<I", masked_crc32c(length)), data, struct.pack("<I", masked_crc32c(data)))
    )


def write_tfrecord(path: str | os.PathLike, payloads: Iterable[bytes]) -> Path:
    """Write payloads as one uncompressed TFRecord file (atomically: a reader never sees half a file).

    Args:
        path: output file; parent directories are created.
        payloads: serialized records (e.g. ``tf.train.Example`` bytes).

    Returns:
        The path written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        for data in payloads:
            f.write(encode_record(data))
    tmp.replace(path)
    return path
