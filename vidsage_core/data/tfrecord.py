"""TFRecord files: TensorFlow (imported lazily) writes them; the record framing localises damage.

TensorFlow reads and writes TFRecords for us (:func:`tensorflow` imports it on first use, so
``import vidsage_core`` stays fast). What is left here is the container's framing, which the
reader's fallback needs to name a damaged record and read on past it::

    uint64 length (little-endian)
    uint32 masked_crc32c(length bytes)
    byte   data[length]
    uint32 masked_crc32c(data)

with ``mask(crc) = ((crc >> 15) | (crc << 17)) + 0xa282ead8 (mod 2**32)`` (CRC-32C from the
``crc32c`` package). A data-CRC failure damages one record only (the length is trusted, so
reading continues with the next one); a length-CRC failure loses the framing, so the rest of that
file cannot be read.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import crc32c

_MASK_DELTA = 0xA282EAD8
_LENGTH = struct.Struct("<Q")
_CRC = struct.Struct("<I")
HEADER_BYTES = 12  # uint64 length + uint32 masked crc of the length
FOOTER_BYTES = 4  # uint32 masked crc of the data

# Reasons a record (or the rest of a file) is dropped; SkipReport counts by these names.
TRUNCATED = "truncated"  # the file ends inside a record
LENGTH_CRC = "length_crc"  # the length field is damaged: framing lost, rest of file unread
DATA_CRC = "data_crc"  # the record's payload is damaged


def tensorflow() -> ModuleType:
    """TensorFlow, imported on first use (it takes seconds), with its C++ start-up chatter off."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Only record parsing runs in TensorFlow here, where oneDNN's fused kernels play no part; its
    # start-up notice ("oneDNN custom operations are on") is printed past TF_CPP_MIN_LOG_LEVEL, once
    # per process: in every notebook kernel of a papermill run.
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    import tensorflow as tf

    return tf


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


def iter_frames(buf: bytes | memoryview) -> Iterator[tuple[int, int, int] | FramingError]:
    """:func:`frame_records` one record at a time, for a reader that needs only the first few.

    Yields:
        ``(index, data_start, data_length)`` of each intact record, or the :class:`FramingError` of a
        damaged one, in file order (after a truncation or length-CRC failure, nothing more).
    """
    view = memoryview(buf)
    size = len(view)
    pos = index = 0
    while pos < size:
        if size - pos < HEADER_BYTES:
            yield FramingError(index, pos, TRUNCATED, f"{size - pos} trailing bytes, a header needs 12")
            return
        length = _LENGTH.unpack_from(view, pos)[0]
        if masked_crc32c(view[pos : pos + 8]) != _CRC.unpack_from(view, pos + 8)[0]:
            yield FramingError(
                index, pos, LENGTH_CRC,
                f"length field fails its CRC; framing lost, the last {size - pos} bytes of the file are unread")
            return
        start = pos + HEADER_BYTES
        end = start + length
        if end + FOOTER_BYTES > size:
            yield FramingError(index, pos, TRUNCATED, f"record of {length} bytes needs "
                               f"{HEADER_BYTES + length + FOOTER_BYTES}, only {size - pos} left")
            return
        if masked_crc32c(view[start:end]) != _CRC.unpack_from(view, end)[0]:
            yield FramingError(index, pos, DATA_CRC, f"payload of {length} bytes fails its CRC")
        else:
            yield index, start, length
        pos = end + FOOTER_BYTES
        index += 1


def frame_records(buf: bytes | memoryview) -> tuple[list[tuple[int, int, int]], list[FramingError]]:
    """Split the bytes of one TFRecord file into records, checking both CRCs of each.

    Args:
        buf: the whole file.

    Returns:
        ``(spans, errors)``: ``spans`` lists ``(index, data_start, data_length)`` for every record
        whose framing and data CRC are intact, in file order; ``errors`` lists the
        :class:`FramingError` of every damaged record, in file order (a data-CRC failure skips
        one record; a truncation or length-CRC failure ends the file, since nothing after it can
        be framed).
    """
    spans: list[tuple[int, int, int]] = []
    errors: list[FramingError] = []
    for item in iter_frames(buf):
        (errors if isinstance(item, FramingError) else spans).append(item)
    return spans, errors


def iter_tfrecord(path: str | os.PathLike) -> Iterator[bytes]:
    """Yield the payload of every record of one file, raising :class:`TFRecordError` at the first damage."""
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
    """One payload framed as a TFRecord record (header, data, footer), e.g. to splice into a file."""
    length = _LENGTH.pack(len(data))
    return b"".join((length, _CRC.pack(masked_crc32c(length)), data, _CRC.pack(masked_crc32c(data))))


def write_tfrecord(path: str | os.PathLike, payloads: Iterable[bytes]) -> Path:
    """Write payloads with ``tf.io.TFRecordWriter``, atomically (a reader never sees half a file).

    Args:
        path: output file (uncompressed TFRecord); parent directories are created.
        payloads: serialized records (e.g. ``tf.train.Example.SerializeToString()``).

    Returns:
        The path written.
    """
    tf = tensorflow()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    try:
        with tf.io.TFRecordWriter(str(tmp)) as writer:
            for data in payloads:
                writer.write(data)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    tmp.replace(path)
    return path
