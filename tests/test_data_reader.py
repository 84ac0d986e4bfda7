"""read_tfrecords on real YouTube-8M shards (bit-identical to tf.io.parse_example) and on frame-level files."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from vidsage_core.data import (
    TFRecordError,
    dequantize,
    pool_frames,
    read_tfrecords,
    write_frame_level_tfrecord,
    write_video_level_tfrecord,
)
from vidsage_core.data.reader import QUANT_BIAS, QUANT_SCALE, parse_pooling


def _tf_parse(path, id_key):
    """Reference: TensorFlow's own parser over a whole file."""
    import tensorflow as tf

    spec = {
        id_key: tf.io.FixedLenFeature([], tf.string),
        "labels": tf.io.VarLenFeature(tf.int64),
        "mean_rgb": tf.io.FixedLenFeature([1024], tf.float32),
        "mean_audio": tf.io.FixedLenFeature([128], tf.float32),
    }
    serialized = [r.numpy() for r in tf.data.TFRecordDataset(str(path))]
    parsed = tf.io.parse_example(serialized, spec)
    labels = tf.sparse.to_dense(parsed["labels"], default_value=-1).numpy()
    return (
        [x.decode() for x in parsed[id_key].numpy()],
        [sorted(row[row >= 0].tolist()) for row in labels],
        parsed["mean_rgb"].numpy(),
        parsed["mean_audio"].numpy(),
    )


def _rows(videos):
    ptr = videos.labels.indptr
    return [sorted(videos.labels.indices[a:b].tolist()) for a, b in zip(ptr[:-1], ptr[1:])]


@pytest.mark.parametrize("shard_fixture,id_key,num_classes,count", [
    ("real_shard", "id", 3862, 284),
    ("real_2017_shard", "video_id", 4716, 368),
])
def test_bit_identical_to_tensorflow(request, shard_fixture, id_key, num_classes, count):
    path = request.getfixturevalue(shard_fixture)
    ours = read_tfrecords(path, progress=False)
    ids, labels, rgb, audio = _tf_parse(path, id_key)
    assert len(ours) == count and ours.num_classes == num_classes
    assert ours.ids.tolist() == ids
    assert _rows(ours) == labels
    # bit patterns, not just values (a -0.0 or NaN payload would differ here)
    assert ours.rgb.dtype == np.float32 and ours.rgb.shape == (count, 1024)
    np.testing.assert_array_equal(ours.rgb.view(np.uint32), rgb.view(np.uint32))
    np.testing.assert_array_equal(ours.audio.view(np.uint32), audio.view(np.uint32))
    assert ours.labels.dtype == np.float32 and set(np.unique(ours.labels.data)) == {1.0}
    assert len(ours.skipped) == 0 and ours.skipped.records_read == count


def test_path_forms_glob_dir_file_list(tmp_path, real_shard):
    for name in ("a.tfrecord", "b.tfrecord"):
        shutil.copy(real_shard, tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a record")
    with pytest.raises(TFRecordError, match="duplicate_id"):  # b repeats a's ids
        read_tfrecords(tmp_path, progress=False)
    one = read_tfrecords(tmp_path / "a.tfrecord", progress=False)
    by_glob = read_tfrecords(str(tmp_path / "a*.tfrecord"), progress=False)
    by_list = read_tfrecords([tmp_path / "a.tfrecord"], progress=False)
    assert one.ids.tolist() == by_glob.ids.tolist() == by_list.ids.tolist()
    assert "a*.tfrecord" in by_glob.source
    (tmp_path / "b.tfrecord").unlink()
    assert len(read_tfrecords(tmp_path, progress=False)) == 284  # directory: *.tfrecord only


def test_missing_inputs_raise_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing-\*\.tfrecord"):
        read_tfrecords(str(tmp_path / "nothing-*.tfrecord"), progress=False)
    with pytest.raises(FileNotFoundError, match="holds no"):
        read_tfrecords(tmp_path, progress=False)
    with pytest.raises(FileNotFoundError, match="no such"):
        read_tfrecords(tmp_path / "absent.tfrecord", progress=False)


def test_mixing_2017_and_2018_needs_num_classes(real_shard, real_2017_shard):
    with pytest.raises(ValueError, match="different label vocabularies"):
        read_tfrecords([real_shard, real_2017_shard], progress=False)
    both = read_tfrecords([real_shard, real_2017_shard], num_classes=4716, progress=False)
    assert len(both) == 284 + 368 and both.num_classes == 4716


def test_argument_checks(real_shard):
    with pytest.raises(ValueError, match="level"):
        read_tfrecords(real_shard, level="clip", progress=False)
    with pytest.raises(ValueError, match="on_error"):
        read_tfrecords(real_shard, on_error="ignore", progress=False)
    with pytest.raises(ValueError, match="level='frame'"):
        read_tfrecords(real_shard, pooling="mean+std", progress=False)


def test_video_level_writer_round_trip(tmp_path):
    rng = np.random.default_rng(0)
    rgb = rng.standard_normal((3, 1024)).astype(np.float32)
    audio = rng.standard_normal((3, 128)).astype(np.float32)
    path = write_video_level_tfrecord(tmp_path / "v.tfrecord", ["x", "y", "z"], rgb, audio, [[1, 2], [], [3861]])
    v = read_tfrecords(path, progress=False)
    assert v.ids.tolist() == ["x", "y", "z"]
    np.testing.assert_array_equal(v.rgb, rgb)
    np.testing.assert_array_equal(v.audio, audio)
    assert _rows(v) == [[1, 2], [], [3861]]
    assert v.skipped.info == {"unlabelled": 1}


# ----------------------------------------------------------------------------- frame level


@pytest.fixture()
def frame_file(tmp_path):
    """Three videos of 4, 1 and 7 frames, quantised codes chosen by hand-friendly rules."""
    rng = np.random.default_rng(1)
    lengths = [4, 1, 7]
    rgb_q = [rng.integers(0, 256, (f, 1024), dtype=np.uint8) for f in lengths]
    audio_q = [rng.integers(0, 256, (f, 128), dtype=np.uint8) for f in lengths]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["v0", "v1", "v2"], rgb_q, audio_q,
                                      [[0], [5, 7], []])
    return path, rgb_q, audio_q


def test_frame_level_mean_is_mean_of_dequantised_frames(frame_file):
    path, rgb_q, audio_q = frame_file
    v = read_tfrecords(path, level="frame", progress=False)
    assert v.ids.tolist() == ["v0", "v1", "v2"] and v.pooling == "mean"
    assert v.rgb.shape == (3, 1024) and v.audio.shape == (3, 128)
    for i in range(3):
        # dequantise by the formula, in float64, then average
        expect = (rgb_q[i].astype(np.float64) * 4 / 255 + (4 / 512 - 2)).mean(axis=0)
        np.testing.assert_allclose(v.rgb[i], expect, rtol=0, atol=1e-6)
        np.testing.assert_allclose(v.audio[i], dequantize(audio_q[i]).mean(axis=0), rtol=0, atol=1e-6)
    assert _rows(v) == [[0], [5, 7], []]


def test_dequantize_endpoints():
    np.testing.assert_array_equal(dequantize(np.array([0, 255], np.uint8)), np.float32([-1.9921875, 2.0078125]))
    assert QUANT_SCALE == 4 / 255 and QUANT_BIAS == 4 / 512 - 2


def test_frame_level_max_frames_pooling_and_keep_frames(frame_file):
    path, rgb_q, audio_q = frame_file
    v = read_tfrecords(path, level="frame", max_frames=3, pooling="mean+std+topk", top_k=2,
                       keep_frames=True, progress=False)
    assert v.pooling == "mean+std+top2"
    # blocks: mean, std, top-1, top-2 -> 4 blocks
    assert v.rgb.shape == (3, 4 * 1024) and v.audio.shape == (3, 4 * 128)
    np.testing.assert_array_equal(v.num_frames, [3, 1, 3])
    assert v.frames.shape == (3, 3, 1152) and v.frames.dtype == np.float16
    q = rgb_q[2][:3]  # first 3 frames only
    d = q.astype(np.float64) * 4 / 255 + (4 / 512 - 2)
    np.testing.assert_allclose(v.rgb[2, :1024], d.mean(0), atol=1e-6)
    np.testing.assert_allclose(v.rgb[2, 1024:2048], d.std(0), atol=1e-6)
    np.testing.assert_allclose(v.rgb[2, 2048:3072], d.max(0), atol=1e-6)
    np.testing.assert_allclose(v.rgb[2, 3072:], np.sort(d, 0)[-2], atol=1e-6)
    # a one-frame video: std 0, and both top blocks repeat its only frame
    d1 = dequantize(rgb_q[1][0])
    np.testing.assert_allclose(v.rgb[1, 1024:2048], 0, atol=1e-7)
    np.testing.assert_allclose(v.rgb[1, 2048:3072], d1, atol=1e-6)
    np.testing.assert_allclose(v.rgb[1, 3072:], d1, atol=1e-6)
    # frames: rgb then audio, zero padding after num_frames
    np.testing.assert_array_equal(v.frames[0, :, :1024], dequantize(rgb_q[0][:3]).astype(np.float16))
    np.testing.assert_array_equal(v.frames[0, :, 1024:], dequantize(audio_q[0][:3]).astype(np.float16))
    assert not v.frames[1, 1:].any()


def test_pool_frames_hand_example():
    q = np.array([[0, 255], [255, 255], [0, 0]], np.uint8)  # 3 frames, 2 dims
    lo, hi = 4 / 512 - 2, 255 * 4 / 255 + 4 / 512 - 2
    out = pool_frames(q, parse_pooling("mean+top2"))
    np.testing.assert_allclose(out, [lo + (hi - lo) / 3, lo + 2 * (hi - lo) / 3, hi, hi, lo, hi], atol=1e-6)
    with pytest.raises(ValueError, match="unknown pooling"):
        parse_pooling("median")


def test_frame_level_reads_2017_key(tmp_path):
    q = np.zeros((2, 1024), np.uint8), np.zeros((2, 128), np.uint8)
    path = write_frame_level_tfrecord(tmp_path / "old.tfrecord", ["abc"], [q[0]], [q[1]], [[4700]], id_key="video_id")
    v = read_tfrecords(path, level="frame", progress=False)
    assert v.num_classes == 4716 and v.ids.tolist() == ["abc"]


def test_wrong_level_is_reported(real_shard, frame_file):
    with pytest.raises(TFRecordError, match=r"record 0 .*missing_feature: no 'rgb' feature list"):
        read_tfrecords(real_shard, level="frame", progress=False)
    with pytest.raises(TFRecordError, match=r"record 0 .*missing_feature: no 'mean_rgb'.*level='frame'"):
        read_tfrecords(frame_file[0], level="video", progress=False)


# ----------------------------------------------------------------------------- fast vs general path


def test_vectorised_and_general_decoders_agree_on_a_real_shard(real_shard):
    """Every record of a real shard, decoded by the general per-record parser, equals the fast path."""
    from vidsage_core.data import fastpath
    from vidsage_core.data.reader import _decode_video
    from vidsage_core.data.tfrecord import frame_records

    buf = real_shard.read_bytes()
    spans, _ = frame_records(buf)
    table = np.array(spans, np.int64)
    b = np.frombuffer(buf, np.uint8)
    fast = fastpath.decode_video_records(b, table[:, 1], table[:, 2])
    assert fast.ok.all()  # the real 2018 shards are canonical: all take the fast path
    rgb = fastpath.gather_rows(b, fast.rgb_start, 1024)
    values = np.split(fast.label_values, np.cumsum(fast.label_counts)[:-1])
    for i, (_, start, length) in enumerate(spans):
        key, vid, labels, r, a, _ = _decode_video(buf[start : start + length])
        assert key == "id" and vid == buf[fast.id_start[i] : fast.id_end[i]].decode()
        assert labels == values[i].tolist()
        np.testing.assert_array_equal(r.view(np.uint32), rgb[i].view(np.uint32))


def _len(field: int, payload: bytes) -> bytes:
    from vidsage_core.data import wire

    return wire.encode_varint((field << 3) | 2) + wire.encode_varint(len(payload)) + payload


def test_non_canonical_encodings_are_read_exactly(tmp_path):
    """Valid protobuf that the vectorised path does not take: decoded by the general path, same values."""
    from vidsage_core.data import fastpath, wire, write_tfrecord
    from vidsage_core.data.tfrecord import frame_records

    rng = np.random.default_rng(0)
    rgb = rng.standard_normal((9, 1024)).astype(np.float32)
    audio = rng.standard_normal((9, 128)).astype(np.float32)

    def feats(i, labels=(1, 2), **extra):
        f = {"id": wire.bytes_feature([f"v{i}".encode()]), "labels": wire.int64_feature(labels),
             "mean_rgb": wire.float_feature(rgb[i]), "mean_audio": wire.float_feature(audio[i])}
        f.update(extra)
        return f

    unpacked_labels = _len(3, b"\x08\x01\x08\x02")
    split_rgb = _len(2, _len(1, rgb[4][:500].tobytes()) + _len(1, rgb[4][500:].tobytes()))
    f6 = feats(6)
    payloads = [
        wire.example(feats(0)),  # canonical
        wire.example(dict(reversed(list(feats(1).items())))),  # other entry order: still canonical
        wire.example(feats(2, extra_feature=wire.float_feature([1.0]))),  # another feature: checked, ignored
        wire.example({**feats(3), "labels": unpacked_labels}),  # unpacked int64 list
        wire.example({**feats(4), "mean_rgb": split_rgb}),  # two packed chunks (merged)
        wire.example(feats(5)) + b"\x18\x07",  # trailing unknown varint field
        _len(1, wire.features_message({"id": f6["id"], "labels": f6["labels"]}))
        + _len(1, wire.features_message({"mean_rgb": f6["mean_rgb"], "mean_audio": f6["mean_audio"]})),  # merged
        wire.example({**feats(7), "id": wire.bytes_feature(["v7-é".encode()])}),  # multi-byte UTF-8 id
        wire.example({**feats(8), "id": wire.bytes_feature([b"stale"]), "labels": wire.int64_feature([3])})
        + _len(1, wire.features_message({"id": wire.bytes_feature([b"v8"])})),  # repeated key: last wins
    ]
    path = write_tfrecord(tmp_path / "mixed.tfrecord", payloads)
    v = read_tfrecords(path, progress=False)
    assert v.ids.tolist() == ["v0", "v1", "v2", "v3", "v4", "v5", "v6", "v7-é", "v8"]
    np.testing.assert_array_equal(v.rgb, rgb)
    np.testing.assert_array_equal(v.audio, audio)
    assert _rows(v) == [[1, 2]] * 8 + [[3]]
    buf = path.read_bytes()
    table = np.array(frame_records(buf)[0], np.int64)
    fast = fastpath.decode_video_records(np.frombuffer(buf, np.uint8), table[:, 1], table[:, 2])
    assert fast.ok.tolist() == [True, True, False, False, False, False, False, True, False]


def test_fuzz_fast_path_never_disagrees_with_general_parser(real_shard):
    """Randomly damaged records: whatever the vectorised path accepts, the general parser reads the same."""
    from vidsage_core.data import fastpath
    from vidsage_core.data.reader import _decode_video, _RecordError
    from vidsage_core.data.tfrecord import frame_records
    from vidsage_core.data.wire import WireError

    buf = real_shard.read_bytes()
    spans, _ = frame_records(buf)
    rng = np.random.default_rng(0)
    payloads = []
    for trial in range(600):
        _, start, length = spans[trial % 40]
        rec = bytearray(buf[start : start + length])
        # damage the structure-heavy head and the id/labels region most of the time
        for _ in range(rng.integers(1, 4)):
            pos = int(rng.integers(0, 60)) if rng.random() < 0.7 else int(rng.integers(0, len(rec)))
            rec[pos] = int(rng.integers(0, 256))
        payloads.append(bytes(rec))
    joined = b"".join(payloads)
    lengths = np.array([len(p) for p in payloads], np.int64)
    starts = np.cumsum(lengths) - lengths
    b = np.frombuffer(joined, np.uint8)
    fast = fastpath.decode_video_records(b, starts, lengths)
    assert 0 < fast.ok.sum() < len(payloads)  # both paths get exercised
    values = np.split(fast.label_values, np.cumsum(fast.label_counts)[:-1])
    accepted = np.flatnonzero(fast.ok)
    rgb = fastpath.gather_rows(b, fast.rgb_start[accepted], 1024)
    audio = fastpath.gather_rows(b, fast.audio_start[accepted], 128)
    for j, i in enumerate(accepted.tolist()):
        raw_id = joined[fast.id_start[i] : fast.id_end[i]]
        try:
            raw_id.decode("utf-8")
        except UnicodeDecodeError:  # the reader sends these to the general parser, which says why
            with pytest.raises(_RecordError, match="not UTF-8"):
                _decode_video(payloads[i])
            continue
        try:
            key, vid, labels, r, a, _ = _decode_video(payloads[i])
        except (_RecordError, WireError, IndexError) as e:
            raise AssertionError(f"fast path accepted record {i} that the general parser rejects: {e}")
        assert key == ("video_id" if fast.video_id_key[i] else "id")
        assert raw_id == vid.encode()
        assert labels == values[i].tolist()
        np.testing.assert_array_equal(r.view(np.uint32), rgb[j].view(np.uint32))
        np.testing.assert_array_equal(a.view(np.uint32), audio[j].view(np.uint32))


def test_other_feature_sizes(tmp_path):
    """Files with other feature sizes (e.g. 1280-d EfficientNet from `vidsage ingest`) via rgb_dim."""
    rng = np.random.default_rng(4)
    rgb = rng.standard_normal((2, 1280)).astype(np.float32)
    audio = np.zeros((2, 128), np.float32)
    path = write_video_level_tfrecord(tmp_path / "v.tfrecord", ["a", "b"], rgb, audio, [[1], [2]])
    with pytest.raises(TFRecordError, match="wrong_length: 'mean_rgb' has 1280 floats, expected 1024"):
        read_tfrecords(path, progress=False)
    v = read_tfrecords(path, rgb_dim=1280, progress=False)
    np.testing.assert_array_equal(v.rgb, rgb)
    q = [rng.integers(0, 256, (3, 1280), dtype=np.uint8)]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["c"], q, [np.zeros((3, 128), np.uint8)], [[0]],
                                      rgb_dim=1280)
    f = read_tfrecords(path, level="frame", rgb_dim=1280, keep_frames=True, progress=False)
    assert f.rgb.shape == (1, 1280) and f.frames.shape == (1, 3, 1408)
    np.testing.assert_allclose(f.rgb[0], dequantize(q[0]).mean(0), atol=1e-6)
