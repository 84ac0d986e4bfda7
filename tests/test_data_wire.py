"""The TFRecord framing and the protobuf wire-format codec, against hand-built bytes."""

from __future__ import annotations

import struct

import crc32c
import numpy as np
import pytest

from vidsage_core.data import wire
from vidsage_core.data.tfrecord import (
    DATA_CRC,
    LENGTH_CRC,
    TRUNCATED,
    TFRecordError,
    crc32c_rows,
    encode_record,
    frame_records,
    iter_tfrecord,
    masked_crc32c,
    write_tfrecord,
)


def test_masked_crc_matches_definition():
    # CRC-32C("123456789") = 0xE3069283 is the standard check value.
    crc = crc32c.crc32c(b"123456789")
    assert crc == 0xE3069283
    assert masked_crc32c(b"123456789") == (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def test_vectorised_crc_matches_crc32c():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 256, (50, 8), dtype=np.uint8)
    expect = [crc32c.crc32c(r.tobytes()) for r in rows]
    assert crc32c_rows(rows).tolist() == expect


def test_framing_round_trip_and_layout(tmp_path):
    payloads = [b"", b"a", b"hello" * 100]
    path = write_tfrecord(tmp_path / "x.tfrecord", payloads)
    buf = path.read_bytes()
    # Layout of the first record by hand: length 0, its masked crc, no data, masked crc of b"".
    assert buf[:8] == struct.pack("<Q", 0)
    assert buf[8:12] == struct.pack("<I", masked_crc32c(struct.pack("<Q", 0)))
    assert buf[12:16] == struct.pack("<I", masked_crc32c(b""))
    assert len(buf) == sum(16 + len(p) for p in payloads)
    assert list(iter_tfrecord(path)) == payloads


def test_framing_errors():
    good = [encode_record(bytes([i]) * 40) for i in range(4)]
    buf = b"".join(good)
    # data CRC: flip a payload byte of record 1 -> only that record is lost
    bad = bytearray(buf)
    bad[len(good[0]) + 12 + 5] ^= 0xFF
    spans, errors = frame_records(bytes(bad))
    assert [s[0] for s in spans] == [0, 2, 3]
    assert [(e.index, e.reason, e.offset) for e in errors] == [(1, DATA_CRC, len(good[0]))]
    # length CRC: flip a length byte of record 2 -> framing lost from there
    bad = bytearray(buf)
    bad[2 * len(good[0])] ^= 0x01
    spans, errors = frame_records(bytes(bad))
    assert [s[0] for s in spans] == [0, 1]
    assert [(e.index, e.reason, e.offset) for e in errors] == [(2, LENGTH_CRC, 2 * len(good[0]))]
    # truncation inside record 3's payload, and inside a header
    spans, errors = frame_records(buf[: 3 * len(good[0]) + 20])
    assert [s[0] for s in spans] == [0, 1, 2] and errors[0].reason == TRUNCATED and errors[0].index == 3
    spans, errors = frame_records(buf[: 3 * len(good[0]) + 5])
    assert len(spans) == 3 and errors[0].reason == TRUNCATED


def test_iter_tfrecord_raises_with_file_and_index(tmp_path):
    bad = bytearray(b"".join(encode_record(b"xyz") for _ in range(3)))
    bad[19 + 12] ^= 0xFF  # payload of record 1 (each record is 19 bytes)
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(bad))
    with pytest.raises(TFRecordError, match=r"bad\.tfrecord: record 1 \(byte offset 19\): data_crc"):
        list(iter_tfrecord(path))


@pytest.mark.parametrize("value", [0, 1, 127, 128, 300, 16383, 16384, 2**35 + 7, 2**63 - 1, 2**64 - 1])
def test_varint_round_trip(value):
    enc = wire.encode_varint(value)
    assert wire.read_varint(enc, 0) == (value, len(enc))


def test_varint_hand_values_and_negative_int64():
    assert wire.encode_varint(300) == b"\xac\x02"  # the protobuf documentation's example
    assert len(wire.encode_varint(-1)) == 10  # int64 -1 is ten bytes on the wire
    feat = wire.int64_feature([-1, 5])
    kind, spans = wire.feature_kind(feat, 0, len(feat))
    assert kind == wire.INT64_LIST and wire.int64_values(feat, spans) == [-1, 5]


def _len(field: int, payload: bytes) -> bytes:
    return wire.encode_varint((field << 3) | 2) + wire.encode_varint(len(payload)) + payload


def test_packed_and_unpacked_floats_and_ints_decode_alike():
    vals = np.array([1.5, -2.0, 3.25e-3], np.float32)
    packed = wire.float_feature(vals)
    unpacked_list = b"".join(b"\x0d" + struct.pack("<f", v) for v in vals)
    unpacked = _len(2, unpacked_list)
    mixed = _len(2, _len(1, vals[:2].tobytes()) + b"\x0d" + vals[2:].tobytes())
    for feat in (packed, unpacked, mixed):
        kind, spans = wire.feature_kind(feat, 0, len(feat))
        assert kind == wire.FLOAT_LIST
        np.testing.assert_array_equal(wire.float_values(feat, spans), vals)
    ints = [3, 300, 0, 4095]
    packed = wire.int64_feature(ints)
    unpacked = _len(3, b"".join(b"\x08" + wire.encode_varint(v) for v in ints))
    for feat in (packed, unpacked):
        kind, spans = wire.feature_kind(feat, 0, len(feat))
        assert kind == wire.INT64_LIST and wire.int64_values(feat, spans) == ints


def test_example_unknown_fields_merge_and_last_wins():
    rgb = wire.float_feature([1.0, 2.0])
    # An unknown varint field, an unknown group and an unknown fixed64 before the features, a
    # second Features occurrence (merged) and a repeated key (last wins).
    group = wire.encode_varint((9 << 3) | 3) + b"\x08\x01" + wire.encode_varint((9 << 3) | 4)
    msg = (b"\x18\x05" + group + b"\x21" + b"\x00" * 8
           + _len(1, wire.features_message({"a": wire.int64_feature([1]), "rgb": wire.float_feature([9.0])}))
           + _len(1, wire.features_message({"rgb": rgb})))
    feats = wire.parse_example(msg)
    assert set(feats) == {b"a", b"rgb"}
    s, e = feats[b"rgb"]
    np.testing.assert_array_equal(wire.float_values(msg, wire.feature_kind(msg, s, e)[1]), [1.0, 2.0])


@pytest.mark.parametrize("payload", [b"\xff" * 20, b"\x0a\x50abc", b"\x0f", b"\x1b\x08\x01"])
def test_malformed_messages_raise(payload):
    with pytest.raises((wire.WireError, IndexError)):
        wire.parse_example(payload)


def test_not_an_example_returns_none():
    assert wire.parse_example(b"\x18\x05") is None  # valid protobuf, but no features field


def test_bytes_feature_list_fast_path_matches_step_by_step():
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 256, (7, 200), dtype=np.uint8)  # 200 > 127: two-byte lengths
    blob = wire.bytes_feature_list(frames)
    fast = wire.bytes_frames(blob, 0, len(blob))
    np.testing.assert_array_equal(fast, frames)
    steps = [blob[s:e] for s, e in wire.feature_list_spans(blob, 0, len(blob))]
    assert len(steps) == 7
    # a list whose steps differ in length is not the regular layout -> no fast path
    mixed = wire.bytes_feature_list(frames[:1]) + wire.bytes_feature_list(frames[1:2, :100])
    assert wire.bytes_frames(mixed, 0, len(mixed)) is None
