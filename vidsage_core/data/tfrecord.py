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

_MASK_DELTA = 0xA282EAD8
_HEADER = struct.Struct("<QI")  # length, masked crc of length
_FOOTER = struct.Struct("<I")  # masked crc of data
HEADER_BYTES = _HEADER.size  # 12
FOOTER_BYTES = _FOOTER.size  # 4

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


def frame_records(buf: bytes, verify_crc: bool = True) -> tuple[list[tuple[int, int, int]], list[FramingError]]:
    """Split the bytes of one TFRecord file into records.

    Args:
        buf: the whole file's bytes.
        verify_crc: check both masked CRC-32Cs (disable only to measure their cost).

    Returns:
        ``(spans, errors)``: ``spans`` lists ``(index, data_start, data_length)`` for every record
        whose framing and data CRC are intact, in file order; ``errors`` lists the
        :class:`FramingError` of every damaged record (a data-CRC failure skips one record; a
        truncation or length-CRC failure ends the file, since nothing after it can be framed).
    """
    spans: list[tuple[int, int, int]] = []
    errors: list[FramingError] = []
    size = len(buf)
    pos = 0
    index = 0
    unpack_header = _HEADER.unpack_from
    unpack_footer = _FOOTER.unpack_from
    crc = crc32c.crc32c
    mv = memoryview(buf)  # zero-copy slices for the CRC of large payloads
    while pos < size:
        if size - pos < HEADER_BYTES:
            errors.append(FramingError(index, pos, TRUNCATED, f"{size - pos} trailing bytes, a header needs 12"))
            break
        length, length_crc = unpack_header(buf, pos)
        if verify_crc:
            c = crc(mv[pos : pos + 8])
            if (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF != length_crc:
                errors.append(
                    FramingError(
                        index, pos, LENGTH_CRC,
                        f"length field fails its CRC; framing lost, the last {size - pos} bytes of the file are unread",
                    )
                )
                break
        start = pos + HEADER_BYTES
        end = start + length + FOOTER_BYTES
        if end > size:
            errors.append(
                FramingError(index, pos, TRUNCATED, f"record of {length} bytes needs {end - pos}, only {size - pos} left")
            )
            break
        if verify_crc:
            c = crc(mv[start : start + length])
            if (((c >> 15) | (c << 17)) + _MASK_DELTA) & 0xFFFFFFFF != unpack_footer(buf, start + length)[0]:
                errors.append(FramingError(index, pos, DATA_CRC, f"payload of {length} bytes fails its CRC"))
                pos = end
                index += 1
                continue
        spans.append((index, start, length))
        pos = end
        index += 1
    return spans, errors


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
