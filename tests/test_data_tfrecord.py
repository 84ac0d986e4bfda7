"""TFRecord framing (the fallback's), TensorFlow's writer, the per-file fallback and the lazy import."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys

import crc32c
import numpy as np
import pytest

from vidsage_core.data import read_tfrecords
from vidsage_core.data import reader as reader_module
from vidsage_core.data.tfrecord import (
    DATA_CRC,
    LENGTH_CRC,
    TRUNCATED,
    TFRecordError,
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


def test_tensorflow_writes_the_framing_by_hand(tmp_path):
    payloads = [b"", b"a", b"hello" * 100]
    path = write_tfrecord(tmp_path / "x.tfrecord", payloads)
    buf = path.read_bytes()
    # Layout of the first record by hand: length 0, its masked crc, no data, masked crc of b"".
    assert buf[:8] == struct.pack("<Q", 0)
    assert buf[8:12] == struct.pack("<I", masked_crc32c(struct.pack("<Q", 0)))
    assert buf[12:16] == struct.pack("<I", masked_crc32c(b""))
    assert len(buf) == sum(16 + len(p) for p in payloads)
    assert buf == b"".join(encode_record(p) for p in payloads)  # our framing == TFRecordWriter's
    assert list(iter_tfrecord(path)) == payloads
    assert not (tmp_path / "x.tfrecord.tmp").exists()


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
    assert len(spans) == 3 and errors[0].reason == TRUNCATED and "5 trailing bytes" in errors[0].detail
    # a data-CRC failure and a truncation after it: both, in file order
    bad = bytearray(buf[: 3 * len(good[0]) + 20])
    bad[12 + 1] ^= 0xFF
    spans, errors = frame_records(bytes(bad))
    assert [s[0] for s in spans] == [1, 2] and [(e.index, e.reason) for e in errors] == [(0, DATA_CRC), (3, TRUNCATED)]


def test_iter_tfrecord_raises_with_file_and_index(tmp_path):
    bad = bytearray(b"".join(encode_record(b"xyz") for _ in range(3)))
    bad[19 + 12] ^= 0xFF  # payload of record 1 (each record is 19 bytes)
    path = tmp_path / "bad.tfrecord"
    path.write_bytes(bytes(bad))
    with pytest.raises(TFRecordError, match=r"bad\.tfrecord: record 1 \(byte offset 19\): data_crc"):
        list(iter_tfrecord(path))


@pytest.fixture()
def three_shards(tmp_path, real_shard):
    """Three real shards copied; the middle one with a data-CRC failure in record 5."""
    src = sorted(real_shard.parent.glob("*.tfrecord"))[:3]
    paths = [shutil.copy(p, tmp_path / f"{i}.tfrecord") for i, p in enumerate(src)]
    buf = bytearray(open(paths[1], "rb").read())
    spans, _ = frame_records(bytes(buf))
    buf[spans[5][1] + 100] ^= 0x40
    open(paths[1], "wb").write(bytes(buf))
    return src, paths


@pytest.mark.parametrize("threads", [1, 2])
def test_only_the_damaged_file_is_read_record_by_record(three_shards, monkeypatch, threads):
    src, paths = three_shards
    calls = []
    original = reader_module._read_records

    def spy(path, number, state):
        calls.append(path.name)
        return original(path, number, state)

    monkeypatch.setattr(reader_module, "_read_records", spy)
    with pytest.warns(UserWarning, match="data_crc: 1"):
        v = read_tfrecords(paths, on_error="skip", num_parallel_reads=threads, progress=False)
    assert calls == ["1.tfrecord"]  # TensorFlow read the other two
    clean = read_tfrecords(src, progress=False)
    n0 = len(read_tfrecords(src[0], progress=False))
    # every good record kept, in file order, with its exact features
    keep = np.r_[0 : n0 + 5, n0 + 6 : len(clean)]
    assert v.ids.tolist() == clean.ids[keep].tolist()
    np.testing.assert_array_equal(v.rgb, clean.rgb[keep])
    assert [(r["file"], r["index"], r["reason"]) for r in v.skipped.records] == [(str(paths[1]), 5, "data_crc")]
    assert v.skipped.records_read == len(clean) and v.skipped.files_read == 3


def test_fallback_reads_like_tensorflow(three_shards):
    """The record-by-record path (protobuf FromString) gives exactly TensorFlow's values."""
    src, _ = three_shards
    from vidsage_core.data.reader import _read_records, _State
    from vidsage_core.data.videoset import SkipReport

    state = _State(level="video", on_error="raise", num_classes=None, require_labels=False, report=SkipReport(),
                   blocks=[("mean", 1)], max_frames=300, keep_frames=False, dims=(None, None))
    rows, errors = _read_records(src[0], 0, state)
    v = read_tfrecords(src[0], progress=False)
    assert not errors and rows.ids == v.ids.tolist() and state.dims == (1024, 128)
    np.testing.assert_array_equal(rows.rgb.view(np.uint32), v.rgb.view(np.uint32))
    np.testing.assert_array_equal(rows.audio.view(np.uint32), v.audio.view(np.uint32))
    np.testing.assert_array_equal(rows.label_values, v.labels.indices)
    # byte offsets from our framing == those the TensorFlow path computes from record lengths
    spans, _ = frame_records(src[0].read_bytes())
    assert rows.offset.tolist() == [s - 12 for _, s, _ in spans]


def test_threads_do_not_change_the_result(real_shard):
    files = sorted(real_shard.parent.glob("*.tfrecord"))[:5]
    one = read_tfrecords(files, num_parallel_reads=1, progress=False)
    two = read_tfrecords(files, num_parallel_reads=2, progress=False)
    assert one.ids.tolist() == two.ids.tolist()
    np.testing.assert_array_equal(one.rgb, two.rgb)
    assert (one.labels != two.labels).nnz == 0


def test_importing_the_package_does_not_import_tensorflow():
    code = ("import sys, vidsage_core, vidsage_core.data, vidsage_core.data.reader, vidsage_core.data.writer; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'tensorflow'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out.stdout


def test_errors_found_after_tensorflow_parsed_a_file_carry_byte_offsets(tmp_path, real_shard):
    """TensorFlow's path knows no offsets; an error found by validation gets them from the framing."""
    for name in ("a.tfrecord", "b.tfrecord"):
        shutil.copy(real_shard, tmp_path / name)
    with pytest.warns(UserWarning, match="duplicate_id: 284"):
        v = read_tfrecords(tmp_path, on_error="skip", progress=False)
    spans, _ = frame_records(real_shard.read_bytes())
    assert [r["index"] for r in v.skipped.records] == list(range(284))
    assert [r["offset"] for r in v.skipped.records] == [start - 12 for _, start, _ in spans]
    assert all(r["file"].endswith("b.tfrecord") for r in v.skipped.records)


def test_frame_level_tensorflow_path_equals_the_fallback(tmp_path):
    """More records than one parse batch: TensorFlow's path and the record-by-record one agree exactly."""
    from vidsage_core.data import write_synthetic_frame_level
    from vidsage_core.data.reader import FRAME_BATCH, _read_records, _State, parse_pooling
    from vidsage_core.data.videoset import SkipReport

    n = 2 * FRAME_BATCH + 7
    path = write_synthetic_frame_level(tmp_path / "f.tfrecord", n, (1, 4), seed=1)
    v = read_tfrecords(path, level="frame", pooling="mean+std", keep_frames=True, progress=False)
    state = _State(level="frame", on_error="raise", num_classes=None, require_labels=False, report=SkipReport(),
                   blocks=parse_pooling("mean+std"), max_frames=300, keep_frames=True, dims=(None, None))
    rows, errors = _read_records(path, 0, state)
    assert not errors and rows.ids == v.ids.tolist() and len(v) == n
    np.testing.assert_array_equal(rows.rgb, v.rgb)
    np.testing.assert_array_equal(rows.audio, v.audio)
    for i in range(n):
        np.testing.assert_array_equal(rows.frames[i], v.frames[i, : v.num_frames[i]])
    buf = path.read_bytes()
    spans, _ = frame_records(buf)
    assert rows.offset.tolist() == [s - 12 for _, s, _ in spans]
    # offsets on TensorFlow's path (from record lengths, across batches): the last record made a
    # copy of the first, found by validation after TensorFlow parsed the file
    dup = tmp_path / "g.tfrecord"
    dup.write_bytes(buf[: spans[-1][1] - 12] + encode_record(buf[spans[0][1] : spans[0][1] + spans[0][2]]))
    with pytest.raises(TFRecordError, match=rf"record {n - 1} \(byte offset {spans[-1][1] - 12}\): duplicate_id"):
        read_tfrecords(dup, level="frame", progress=False)
