"""Our TFRecord writers against TensorFlow's parsers, and the quantiser round trip."""

from __future__ import annotations

import numpy as np
import pytest

from vidsage_core.data import (
    dequantize,
    quantize,
    read_tfrecords,
    wire,
    write_frame_level_tfrecord,
    write_tfrecord,
    write_video_level_tfrecord,
)
from vidsage_core.data.reader import QUANT_SCALE


@pytest.fixture(scope="module")
def tf():
    import tensorflow as tf

    return tf


def test_tensorflow_parses_our_video_level_records(tmp_path, tf):
    rng = np.random.default_rng(0)
    ids = ["a1", "é-unicode", "zz"]
    rgb = rng.standard_normal((3, 1024)).astype(np.float32)
    audio = rng.standard_normal((3, 128)).astype(np.float32)
    labels = [[0, 17, 3861], [], [200]]
    path = write_video_level_tfrecord(tmp_path / "v.tfrecord", ids, rgb, audio, labels)
    spec = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64),
            "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
            "mean_audio": tf.io.FixedLenFeature([128], tf.float32)}
    records = list(tf.data.TFRecordDataset(str(path)))  # TF also checks our CRCs
    assert len(records) == 3
    for i, rec in enumerate(records):
        ex = tf.io.parse_single_example(rec, spec)
        assert ex["id"].numpy().decode() == ids[i]
        assert ex["labels"].values.numpy().tolist() == labels[i]
        np.testing.assert_array_equal(ex["mean_rgb"].numpy(), rgb[i])
        np.testing.assert_array_equal(ex["mean_audio"].numpy(), audio[i])
    # TensorFlow's protobuf classes decode the same bytes too
    ex = tf.train.Example.FromString(records[0].numpy())
    assert list(ex.features.feature["labels"].int64_list.value) == labels[0]


def test_tensorflow_parses_our_frame_level_records(tmp_path, tf):
    rng = np.random.default_rng(1)
    lengths = [5, 1, 130]
    rgb = [rng.uniform(-2, 2, (f, 1024)).astype(np.float32) for f in lengths]
    audio = [rng.uniform(-2, 2, (f, 128)).astype(np.float32) for f in lengths]
    labels = [[1], [2, 3], []]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["x", "y", "z"], rgb, audio, labels)
    context = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}
    sequence = {"rgb": tf.io.FixedLenSequenceFeature([], tf.string),
                "audio": tf.io.FixedLenSequenceFeature([], tf.string)}
    for i, rec in enumerate(tf.data.TFRecordDataset(str(path))):
        ctx, seq = tf.io.parse_single_sequence_example(rec, context_features=context, sequence_features=sequence)
        assert ctx["id"].numpy() == [b"x", b"y", b"z"][i]
        assert ctx["labels"].values.numpy().tolist() == labels[i]
        # YouTube-8M's reader: decode_raw to uint8, then dequantise
        q_rgb = tf.io.decode_raw(seq["rgb"], tf.uint8).numpy()
        q_audio = tf.io.decode_raw(seq["audio"], tf.uint8).numpy()
        assert q_rgb.shape == (lengths[i], 1024) and q_audio.shape == (lengths[i], 128)
        np.testing.assert_array_equal(q_rgb, quantize(rgb[i]))
        # round trip: within half a quantisation step inside the range
        assert np.abs(dequantize(q_rgb) - rgb[i]).max() <= QUANT_SCALE / 2 + 1e-6
        assert np.abs(dequantize(q_audio) - audio[i]).max() <= QUANT_SCALE / 2 + 1e-6


def test_quantise_dequantise_round_trip_within_one_step():
    x = np.linspace(-2, 2, 100_001, dtype=np.float32)
    err = np.abs(dequantize(quantize(x)) - x)
    assert err.max() <= QUANT_SCALE  # one step (the ends just below the first level clip)
    inside = (x >= dequantize(np.uint8(0))) & (x <= dequantize(np.uint8(255)))
    assert err[inside].max() <= QUANT_SCALE / 2 + 1e-6
    q = np.arange(256, dtype=np.uint8)
    np.testing.assert_array_equal(quantize(dequantize(q)), q)  # every level is a fixed point
    assert quantize(np.float32([-10, 10])).tolist() == [0, 255]  # out of range clips


def test_our_reader_reads_what_tensorflow_writes(tmp_path, tf):
    rng = np.random.default_rng(2)
    rgb = rng.standard_normal(1024).astype(np.float32)
    ex = tf.train.Example(features=tf.train.Features(feature={
        "id": tf.train.Feature(bytes_list=tf.train.BytesList(value=[b"tfw"])),
        "labels": tf.train.Feature(int64_list=tf.train.Int64List(value=[7, 9])),
        "mean_rgb": tf.train.Feature(float_list=tf.train.FloatList(value=rgb)),
        "mean_audio": tf.train.Feature(float_list=tf.train.FloatList(value=np.ones(128, np.float32))),
    }))
    path = tmp_path / "tfw.tfrecord"
    with tf.io.TFRecordWriter(str(path)) as w:
        w.write(ex.SerializeToString())
    v = read_tfrecords(path, progress=False)
    assert v.ids.tolist() == ["tfw"] and v.labels.indices.tolist() == [7, 9]
    np.testing.assert_array_equal(v.rgb[0], rgb)


def test_unpacked_encoding_parses_like_tensorflow(tmp_path, tf):
    """protobuf allows unpacked repeated scalars; TensorFlow accepts them, so must we."""
    rgb = np.arange(1024, dtype=np.float32) / 7
    unpacked_rgb = b"\x12" + wire.encode_varint(1024 * 5) + b"".join(b"\x0d" + v.tobytes() for v in rgb)
    unpacked_labels = b"\x1a\x04\x08\x05\x08\x06"
    payload = wire.example({"id": wire.bytes_feature([b"u"]), "labels": unpacked_labels,
                            "mean_rgb": unpacked_rgb, "mean_audio": wire.float_feature(np.zeros(128))})
    path = tmp_path / "u.tfrecord"
    write_tfrecord(path, [payload])
    spec = {"labels": tf.io.VarLenFeature(tf.int64), "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32)}
    ref = tf.io.parse_single_example(payload, spec)
    v = read_tfrecords(path, progress=False)
    np.testing.assert_array_equal(v.rgb[0], ref["mean_rgb"].numpy())
    assert v.labels.indices.tolist() == ref["labels"].values.numpy().tolist() == [5, 6]


def test_general_parser_follows_protobuf_on_damaged_real_records(real_shard, tf):
    """Randomly damaged real records: our parser accepts exactly what protobuf parses, with its values."""
    from google.protobuf.message import DecodeError

    from vidsage_core.data.reader import _decode_video, _RecordError
    from vidsage_core.data.tfrecord import frame_records

    def reference(rec):
        ex = tf.train.Example()
        try:
            ex.ParseFromString(rec)
        except DecodeError:
            return None
        f = ex.features.feature
        if not ex.HasField("features") or "id" not in f or f["id"].WhichOneof("kind") != "bytes_list":
            return None
        ids = f["id"].bytes_list.value
        if len(ids) != 1 or not ids[0]:
            return None
        try:
            vid = ids[0].decode()
        except UnicodeDecodeError:
            return None
        kind = f["labels"].WhichOneof("kind") if "labels" in f else None
        if kind not in (None, "int64_list"):
            return None
        feats = []
        for name, dim in (("mean_rgb", 1024), ("mean_audio", 128)):
            if name not in f or f[name].WhichOneof("kind") not in (None, "float_list"):
                return None
            feats.append(np.array(f[name].float_list.value, np.float32))
            if len(feats[-1]) != dim:
                return None
        labels = list(f["labels"].int64_list.value) if kind else []
        return vid, labels, feats[0], feats[1]

    buf = real_shard.read_bytes()
    spans, _ = frame_records(buf)
    rng = np.random.default_rng(3)
    outcomes = {"accepted": 0, "rejected": 0}
    for trial in range(800):
        _, start, length = spans[trial % len(spans)]
        rec = bytearray(buf[start : start + length])
        for _ in range(rng.integers(1, 4)):
            rec[int(rng.integers(0, 70)) if rng.random() < 0.8 else int(rng.integers(0, len(rec)))] = int(
                rng.integers(0, 256))
        rec = bytes(rec)
        expect = reference(rec)
        try:
            _, vid, labels, rgb, audio, _ = _decode_video(rec)
        except (_RecordError, wire.WireError, IndexError):
            assert expect is None, f"trial {trial}: protobuf parses it, we rejected it"
            outcomes["rejected"] += 1
            continue
        assert expect is not None, f"trial {trial}: we accepted a record protobuf rejects"
        assert (vid, labels) == expect[:2]
        np.testing.assert_array_equal(rgb.view(np.uint32), expect[2].view(np.uint32))
        np.testing.assert_array_equal(audio.view(np.uint32), expect[3].view(np.uint32))
        outcomes["accepted"] += 1
    assert min(outcomes.values()) > 100  # both outcomes well exercised
