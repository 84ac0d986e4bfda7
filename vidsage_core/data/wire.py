"""A minimal protobuf wire-format codec for ``tf.train.Example`` and ``tf.train.SequenceExample``.

Only the messages YouTube-8M uses are understood (``tensorflow/core/example/{example,feature}.proto``)::

    Example         { Features features = 1; }
    SequenceExample { Features context = 1; FeatureLists feature_lists = 2; }
    Features        { map<string, Feature> feature = 1; }        # map entry: key = 1, value = 2
    FeatureLists    { map<string, FeatureList> feature_list = 1; }
    FeatureList     { repeated Feature feature = 1; }
    Feature         { oneof kind { BytesList bytes_list = 1; FloatList float_list = 2; Int64List int64_list = 3; } }
    BytesList { repeated bytes value = 1; }  FloatList { repeated float value = 1 [packed]; }
    Int64List { repeated int64 value = 1 [packed]; }

Decoding follows the protobuf specification (what ``tf.train.Example.FromString`` does), which is
what ``tf.io.parse_example`` gives for every well-formed record: unknown fields (any wire type,
groups included) are skipped; a repeated scalar may arrive packed or unpacked (both are legal,
even mixed); a message field that occurs twice is merged; for a map key that occurs twice the
last entry wins; for the ``oneof`` the last kind wins; field number 0 and map keys that are not
UTF-8 are malformed. (On *malformed* records TensorFlow's own fast parser has quirks of its
own, e.g. it ignores bytes after a Feature's first list and rejects unknown fields inside
``Features``; there we follow protobuf, and such records are reported, not guessed at.)
Floats are returned as zero-copy ``np.frombuffer`` views (little-endian float32), so the values
are bit-identical to the serialized ones.

Positions are ``(start, end)`` byte offsets into the record's ``bytes``; nothing is copied until a
value is asked for.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import numpy as np

_U64 = (1 << 64) - 1
_F32 = np.dtype("<f4")

# Feature oneof field numbers.
BYTES_LIST, FLOAT_LIST, INT64_LIST = 1, 2, 3
KIND_NAMES = {0: "empty", BYTES_LIST: "bytes_list", FLOAT_LIST: "float_list", INT64_LIST: "int64_list"}


class WireError(ValueError):
    """The bytes are not a valid protobuf message of the expected type."""


# ----------------------------------------------------------------------------- decoding primitives


def read_varint(buf: bytes, pos: int) -> tuple[int, int]:
    """Decode one base-128 varint at ``pos``; return ``(value, new_pos)`` (value as uint64)."""
    b = buf[pos]
    if b < 0x80:  # the common case (tags, short lengths) without a loop
        return b, pos + 1
    result = b & 0x7F
    shift = 7
    pos += 1
    while True:
        b = buf[pos]  # IndexError past the end; callers turn it into WireError
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result & _U64, pos
        shift += 7
        if shift >= 70:
            raise WireError("varint longer than 10 bytes")


def _read_len(buf: bytes, pos: int, end: int) -> tuple[int, int]:
    """Read a length prefix and return ``(start, stop)`` of the delimited bytes, bounds-checked."""
    b = buf[pos]
    if b < 0x80:
        length, pos = b, pos + 1
    elif buf[pos + 1] < 0x80:
        length, pos = (b & 0x7F) | (buf[pos + 1] << 7), pos + 2
    else:
        length, pos = read_varint(buf, pos)
    stop = pos + length
    if stop > end:
        raise WireError(f"length-delimited field of {length} bytes runs past the end of its message")
    return pos, stop


def skip_field(buf: bytes, pos: int, tag: int, end: int) -> int:
    """Skip the value of a field whose tag was just read; return the position after it."""
    if tag < 8 or tag > 0xFFFFFFFF:  # field number 0, or a tag beyond uint32: malformed, as protobuf says
        raise WireError(f"invalid field tag {tag}")
    wire_type = tag & 7
    if wire_type == 0:
        _, pos = read_varint(buf, pos)
    elif wire_type == 1:
        pos += 8
    elif wire_type == 2:
        _, pos = _read_len(buf, pos, end)
    elif wire_type == 5:
        pos += 4
    elif wire_type == 3:  # start group: skip up to the matching end-group tag
        field = tag >> 3
        while True:
            if pos >= end:
                raise WireError("unterminated group")
            inner, pos = read_varint(buf, pos)
            if inner & 7 == 4:
                if inner >> 3 != field:
                    raise WireError("mismatched end-group tag")
                break
            pos = skip_field(buf, pos, inner, end)
    else:  # 4 (stray end group), 6, 7
        raise WireError(f"invalid wire type {wire_type}")
    if pos > end:
        raise WireError("field runs past the end of its message")
    return pos


def _submessages(buf: bytes, start: int, end: int, field_number: int) -> list[tuple[int, int]]:
    """Spans of every occurrence of a length-delimited field ``field_number`` in a message."""
    want = (field_number << 3) | 2
    spans = []
    pos = start
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = read_varint(buf, pos)
        if tag == want:
            s, pos = _read_len(buf, pos, end)
            spans.append((s, pos))
        else:
            pos = skip_field(buf, pos, tag, end)
    if pos != end:
        raise WireError("message overruns its length")
    return spans


# ----------------------------------------------------------------------------- messages


def parse_map(buf: bytes, start: int, end: int, into: dict[bytes, tuple[int, int]] | None = None,
              check: Callable[[bytes, int, int], None] | None = None) -> dict[bytes, tuple[int, int]]:
    """Parse ``Features`` or ``FeatureLists`` (a map<string, message>, field 1).

    Args:
        check: called on every entry's value span (also of entries a later one overrides), to
            validate the value message as protobuf does when it parses the map.

    Returns:
        ``{key bytes: (value_start, value_end)}``; a repeated key keeps its last entry, a missing
        key is ``b""`` and a missing value an empty span, as protobuf specifies.
    """
    # The hot loop of the reader: one-byte tags and lengths are decoded inline (no calls).
    out = {} if into is None else into
    pos = start
    while pos < end:
        tag = buf[pos]
        if tag != 0x0A:
            if tag >= 0x80:
                tag, pos = read_varint(buf, pos)
            else:
                pos += 1
            pos = skip_field(buf, pos, tag, end)
            continue
        length = buf[pos + 1]
        if length < 0x80:
            pos += 2
        elif buf[pos + 2] < 0x80:  # two-byte length (entries of 128 B .. 16 KiB: mean_rgb)
            length = (length & 0x7F) | (buf[pos + 2] << 7)
            pos += 3
        else:
            length, pos = read_varint(buf, pos + 1)
        entry_end = pos + length
        if entry_end > end:
            raise WireError("map entry runs past the end of its message")
        key = b""
        v_start = v_end = entry_end
        p = pos
        while p < entry_end:
            t = buf[p]
            if t == 0x0A or t == 0x12:
                length = buf[p + 1]
                if length < 0x80:
                    p += 2
                elif buf[p + 2] < 0x80:
                    length = (length & 0x7F) | (buf[p + 2] << 7)
                    p += 3
                else:
                    length, p = read_varint(buf, p + 1)
                stop = p + length
                if stop > entry_end:
                    raise WireError("map entry field runs past the end of its entry")
                if t == 0x0A:
                    key = buf[p:stop]
                    if not key.isascii():  # map keys are proto3 strings: protobuf rejects bad UTF-8
                        try:
                            key.decode("utf-8")
                        except UnicodeDecodeError:
                            raise WireError(f"map key is not UTF-8: {key[:32]!r}") from None
                else:
                    v_start, v_end = p, stop
                p = stop
            else:
                if t >= 0x80:
                    t, p = read_varint(buf, p)
                else:
                    p += 1
                p = skip_field(buf, p, t, entry_end)
        if p != entry_end:
            raise WireError("map entry overruns its length")
        if check is not None:
            check(buf, v_start, v_end)
        out[key] = (v_start, v_end)
        pos = entry_end
    if pos != end:
        raise WireError("map overruns its length")
    return out


def parse_example(buf: bytes) -> dict[bytes, tuple[int, int]] | None:
    """Parse a serialized ``tf.train.Example``.

    Returns:
        ``{feature name: Feature span}``, or ``None`` when the message has no ``features`` field
        at all (e.g. a payload that is some other message). Raises :class:`WireError` (or
        ``IndexError``) on malformed bytes.
    """
    spans = _submessages(buf, 0, len(buf), 1)
    if not spans:
        return None
    features: dict[bytes, tuple[int, int]] = {}
    for s, e in spans:  # a repeated message field is merged, later keys override
        parse_map(buf, s, e, features, check_feature)
    return features


def parse_sequence_example(buf: bytes) -> tuple[dict[bytes, tuple[int, int]], dict[bytes, tuple[int, int]]] | None:
    """Parse a serialized ``tf.train.SequenceExample``.

    Returns:
        ``(context, feature_lists)``: ``{name: Feature span}`` and ``{name: FeatureList span}``;
        ``None`` when neither field is present.
    """
    context: dict[bytes, tuple[int, int]] = {}
    lists: dict[bytes, tuple[int, int]] = {}
    end = len(buf)
    pos = 0
    seen = False
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = read_varint(buf, pos)
        if tag == 0x0A or tag == 0x12:
            s, pos = _read_len(buf, pos, end)
            if tag == 0x0A:
                parse_map(buf, s, pos, context, check_feature)
            else:
                parse_map(buf, s, pos, lists, check_feature_list)
            seen = True
        else:
            pos = skip_field(buf, pos, tag, end)
    if pos != end:
        raise WireError("message overruns its length")
    return (context, lists) if seen else None


def single_payload(buf: bytes, start: int, end: int, kind: int) -> tuple[int, int] | None:
    """Fast path for the usual encoding of a ``Feature``: ``kind`` list holding one field-1 chunk.

    That chunk is the packed data of a float/int64 list, or the only value of a bytes list. When
    the Feature is exactly ``{kind: {1: chunk}}`` (what TensorFlow writes), return the chunk's
    span; otherwise ``None`` and the caller takes the general path (same result).
    """
    if end - start < 4 or buf[start] != (kind << 3) | 2:
        return None
    length = buf[start + 1]
    if length < 0x80:
        p = start + 2
    elif buf[start + 2] < 0x80:
        length = (length & 0x7F) | (buf[start + 2] << 7)
        p = start + 3
    else:
        length, p = read_varint(buf, start + 1)
    if p + length != end or buf[p] != 0x0A:
        return None
    length = buf[p + 1]
    if length < 0x80:
        p += 2
    elif buf[p + 2] < 0x80:
        length = (length & 0x7F) | (buf[p + 2] << 7)
        p += 3
    else:
        length, p = read_varint(buf, p + 1)
    if p + length != end:
        return None
    return p, end


def feature_kind(buf: bytes, start: int, end: int) -> tuple[int, list[tuple[int, int]]]:
    """Which list a ``Feature`` holds and the span(s) of that list message.

    Returns:
        ``(kind, spans)``: kind is ``BYTES_LIST``, ``FLOAT_LIST``, ``INT64_LIST`` or 0 (unset).
        Several spans mean the list occurred more than once and must be merged (concatenated).
    """
    kind = 0
    spans: list[tuple[int, int]] = []
    pos = start
    while pos < end:
        tag = buf[pos]
        if tag < 0x80:
            pos += 1
        else:
            tag, pos = read_varint(buf, pos)
        field = tag >> 3
        if tag & 7 == 2 and 1 <= field <= 3:
            s, pos = _read_len(buf, pos, end)
            _LIST_CHECKS[field](buf, [(s, pos)])  # protobuf parses every list, also a replaced one
            if field != kind:  # oneof: a different member replaces the previous one
                kind = field
                spans = []
            spans.append((s, pos))
        else:
            pos = skip_field(buf, pos, tag, end)
    if pos != end:
        raise WireError("Feature overruns its length")
    return kind, spans


def check_feature(buf: bytes, start: int, end: int) -> None:
    """Validate a ``Feature`` completely (as protobuf would on parsing), without using its values."""
    feature_kind(buf, start, end)


def check_feature_list(buf: bytes, start: int, end: int) -> None:
    """Validate a ``FeatureList`` completely: every step's ``Feature``."""
    if bytes_frames(buf, start, end) is not None:  # the regular layout is valid by construction
        return
    for s, e in feature_list_spans(buf, start, end):
        feature_kind(buf, s, e)


def float_values(buf: bytes, spans: Sequence[tuple[int, int]]) -> np.ndarray:
    """Values of a ``FloatList`` (packed and/or unpacked) as float32, zero-copy when packed once."""
    chunks = []
    for start, end in spans:
        pos = start
        while pos < end:
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = read_varint(buf, pos)
            if tag == 0x0A:  # packed
                s, pos = _read_len(buf, pos, end)
                if (pos - s) % 4:
                    raise WireError("packed float list length is not a multiple of 4")
                chunks.append(np.frombuffer(buf, _F32, (pos - s) // 4, s))
            elif tag == 0x0D:  # one unpacked fixed32 value
                if pos + 4 > end:
                    raise WireError("float runs past the end of its list")
                chunks.append(np.frombuffer(buf, _F32, 1, pos))
                pos += 4
            else:
                pos = skip_field(buf, pos, tag, end)
    if len(chunks) == 1:
        return chunks[0]
    if not chunks:
        return np.empty(0, _F32)
    return np.concatenate(chunks)


def int64_values(buf: bytes, spans: Sequence[tuple[int, int]]) -> list[int]:
    """Values of an ``Int64List`` (packed and/or unpacked) as signed Python ints."""
    values: list[int] = []
    for start, end in spans:
        pos = start
        while pos < end:
            tag = buf[pos]
            if tag < 0x80:
                pos += 1
            else:
                tag, pos = read_varint(buf, pos)
            if tag == 0x0A:  # packed varints
                s, pos = _read_len(buf, pos, end)
                values.extend(packed_int64(buf, s, pos))
            elif tag == 0x08:  # one unpacked varint
                v, pos = read_varint(buf, pos)
                values.append(v - (1 << 64) if v >= 1 << 63 else v)
            else:
                pos = skip_field(buf, pos, tag, end)
            if pos > end:
                raise WireError("int64 list overruns its length")
    return values


def packed_int64(buf: bytes, start: int, end: int) -> list[int]:
    """Decode packed int64 varints in ``[start, end)`` as signed ints (two's complement)."""
    values = []
    p = start
    while p < end:
        v = buf[p]
        if v < 0x80:
            p += 1
        else:
            v, p = read_varint(buf, p)
            if v >= 1 << 63:
                v -= 1 << 64
        values.append(v)
    if p != end:
        raise WireError("packed varint runs past the end of its list")
    return values


def bytes_values(buf: bytes, spans: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Spans of the values of a ``BytesList``."""
    values: list[tuple[int, int]] = []
    for start, end in spans:
        values.extend(_submessages(buf, start, end, 1))
    return values


_LIST_CHECKS = {BYTES_LIST: bytes_values, FLOAT_LIST: float_values, INT64_LIST: int64_values}


def feature_list_spans(buf: bytes, start: int, end: int) -> list[tuple[int, int]]:
    """Spans of the ``Feature`` messages of a ``FeatureList`` (one per time step)."""
    return _submessages(buf, start, end, 1)


def bytes_frames(buf: bytes, start: int, end: int) -> np.ndarray | None:
    """Fast path: a ``FeatureList`` whose every step is one ``bytes`` value of the same length.

    YouTube-8M frame features are written exactly like that, so each step is the same header
    (three tag/length pairs) followed by ``D`` bytes. If the whole list is that header repeated at
    a fixed stride, the frames are a strided uint8 view; the header comparison checks every step,
    so the result equals decoding each step. Returns ``None`` when the list has another shape
    (the caller then decodes step by step).

    Returns:
        uint8 ``[F, D]`` read-only view, or ``None``.
    """
    if start >= end:
        return None
    pos = start
    if buf[pos] != 0x0A:
        return None
    f_start, f_end = _read_len(buf, pos + 1, end)  # Feature
    if f_start >= f_end or buf[f_start] != 0x0A:
        return None
    l_start, l_end = _read_len(buf, f_start + 1, f_end)  # BytesList
    if l_end != f_end or l_start >= l_end or buf[l_start] != 0x0A:
        return None
    v_start, v_end = _read_len(buf, l_start + 1, l_end)  # the one value
    if v_end != l_end:
        return None
    header = v_start - start
    stride = f_end - start
    if (end - start) % stride:
        return None
    steps = (end - start) // stride
    rows = np.frombuffer(buf, np.uint8, end - start, start).reshape(steps, stride)
    if steps > 1 and not (rows[1:, :header] == rows[0, :header]).all():
        return None
    return rows[:, header:]


# ----------------------------------------------------------------------------- encoding


def encode_varint(value: int) -> bytes:
    """Base-128 varint of ``value`` (negative ints as 64-bit two's complement, like int64)."""
    value &= _U64
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def _len_field(field_number: int, payload: bytes) -> bytes:
    return encode_varint((field_number << 3) | 2) + encode_varint(len(payload)) + payload


def bytes_feature(values: Iterable[bytes]) -> bytes:
    """Serialized ``Feature{bytes_list}``."""
    return _len_field(BYTES_LIST, b"".join(_len_field(1, bytes(v)) for v in values))


def float_feature(values: np.ndarray | Sequence[float]) -> bytes:
    """Serialized ``Feature{float_list}`` (packed little-endian float32, as TensorFlow writes)."""
    data = np.ascontiguousarray(values, dtype=_F32).tobytes()
    return _len_field(FLOAT_LIST, _len_field(1, data) if data else b"")


def int64_feature(values: Iterable[int]) -> bytes:
    """Serialized ``Feature{int64_list}`` (packed varints, as TensorFlow writes)."""
    data = b"".join(encode_varint(int(v)) for v in values)
    return _len_field(INT64_LIST, _len_field(1, data) if data else b"")


def features_message(features: Mapping[str, bytes]) -> bytes:
    """Serialized ``Features`` from ``{name: serialized Feature}`` (entries in the given order)."""
    return b"".join(_len_field(1, _len_field(1, k.encode()) + _len_field(2, v)) for k, v in features.items())


def example(features: Mapping[str, bytes]) -> bytes:
    """Serialized ``tf.train.Example``."""
    return _len_field(1, features_message(features))


def bytes_feature_list(frames: np.ndarray) -> bytes:
    """Serialized ``FeatureList`` with one ``Feature{bytes_list{value}}`` per row of ``frames``.

    Args:
        frames: uint8 ``[F, D]``; every row becomes one time step of ``D`` bytes.
    """
    frames = np.ascontiguousarray(frames, dtype=np.uint8)
    steps, dim = frames.shape
    value = encode_varint(0x0A) + encode_varint(dim)  # BytesList.value tag + length
    blist = encode_varint(0x0A) + encode_varint(len(value) + dim)  # Feature.bytes_list
    feat = encode_varint(0x0A) + encode_varint(len(blist) + len(value) + dim)  # FeatureList.feature
    header = np.frombuffer(feat + blist + value, np.uint8)
    # Every step has the same header, so build all steps at once instead of a loop per frame.
    out = np.empty((steps, len(header) + dim), np.uint8)
    out[:, : len(header)] = header
    out[:, len(header) :] = frames
    return out.tobytes()


def sequence_example(context: Mapping[str, bytes], feature_lists: Mapping[str, bytes]) -> bytes:
    """Serialized ``tf.train.SequenceExample`` from serialized Features / FeatureList values."""
    lists = b"".join(_len_field(1, _len_field(1, k.encode()) + _len_field(2, v)) for k, v in feature_lists.items())
    return _len_field(1, features_message(context)) + _len_field(2, lists)
