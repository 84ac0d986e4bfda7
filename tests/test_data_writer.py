"""Our TFRecord writers against TensorFlow's parsers, and the quantiser round trip."""

from __future__ import annotations

import numpy as np
import pytest

from vidsage_core.data import (
    dequantize,
    quantize,
    read_tfrecords,
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


def _varint(v: int) -> bytes:
    out = bytearray()
    while True:
        out.append((v & 0x7F) | (0x80 if v > 0x7F else 0))
        v >>= 7
        if not v:
            return bytes(out)


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, by hand."""
    return _varint((number << 3) | 2) + _varint(len(payload)) + payload


def test_unpacked_encoding_reads_like_tensorflow_on_both_paths(tmp_path, tf):
    """protobuf allows unpacked repeated scalars; TensorFlow's parser and the protobuf fallback agree."""
    rgb = np.arange(1024, dtype=np.float32) / 7
    unpacked_rgb = _field(2, b"".join(b"\x0d" + v.tobytes() for v in rgb))  # Feature.float_list, one fixed32 each
    unpacked_labels = _field(3, b"\x08\x05\x08\x06")  # Feature.int64_list, two unpacked varints
    features = {b"id": _field(1, _field(1, b"u")), b"labels": unpacked_labels, b"mean_rgb": unpacked_rgb,
                b"mean_audio": _field(2, _field(1, np.zeros(128, np.float32).tobytes()))}
    payload = _field(1, b"".join(_field(1, _field(1, k) + _field(2, v)) for k, v in features.items()))
    spec = {"labels": tf.io.VarLenFeature(tf.int64), "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32)}
    ref = tf.io.parse_single_example(payload, spec)
    assert ref["labels"].values.numpy().tolist() == [5, 6]
    path = write_tfrecord(tmp_path / "u.tfrecord", [payload])
    v = read_tfrecords(path, progress=False)  # TensorFlow's path
    np.testing.assert_array_equal(v.rgb[0], ref["mean_rgb"].numpy())
    assert v.labels.indices.tolist() == [5, 6]
    # the same record after a damaged one: the file is read record by record (protobuf)
    from vidsage_core.data.tfrecord import encode_record

    path.write_bytes(b"\x00" * 5 + encode_record(payload))  # 5 bytes: TensorFlow fails on the file
    with pytest.raises(ValueError, match="record 0 .*length_crc"):
        read_tfrecords(path, progress=False)
    path.write_bytes(encode_record(b"\xff" * 8) + encode_record(payload))
    with pytest.warns(UserWarning, match="not_example: 1"):
        v = read_tfrecords(path, on_error="skip", progress=False)
    np.testing.assert_array_equal(v.rgb[0], ref["mean_rgb"].numpy())
    assert v.ids.tolist() == ["u"] and v.labels.indices.tolist() == [5, 6]
