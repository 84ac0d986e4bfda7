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


# ----------------------------------------------------------------------------- bit identity, feature widths


# sha256 of (ids, float32 rgb, float32 audio, label CSR) of the embedded shards, computed with the
# hand-written protobuf reader this TensorFlow-based one replaced (commit 0c34aaa), before the change.
EMBEDDED_DIGESTS = {
    "video_level_2018": (13998, "73b49ed6d1735d3e02ccbd52616ca33322425629a1ebf7f888d012324dbcc671"),
    "video_level_2017_v1": (368, "591fa3810c68f50c5601e78cc1955500253f991eddec6f4bc99703448dac0177"),
}
# The same digest (plus frames) of the random frame-level file of the test below, read with
# max_frames=20, pooling="mean+std+top3", keep_frames=True; also with commit 0c34aaa (its writer too).
RANDOM_FRAME_DIGEST = "abc90f102a690067c16c6754a46169aeb3f0700087c63b75f45bb4824061e61a"


def _digest(v) -> str:
    import hashlib

    h = hashlib.sha256()
    h.update("\n".join(v.ids.tolist()).encode())
    h.update(np.ascontiguousarray(v.rgb, "<f4").tobytes())
    h.update(np.ascontiguousarray(v.audio, "<f4").tobytes())
    h.update(np.asarray(v.labels.indptr, "<i8").tobytes())
    h.update(np.asarray(v.labels.indices, "<i8").tobytes())
    if v.frames is not None:
        h.update(np.ascontiguousarray(v.frames, "<f2").tobytes())
        h.update(np.asarray(v.num_frames, "<i4").tobytes())
    return h.hexdigest()


@pytest.mark.parametrize("subdir", sorted(EMBEDDED_DIGESTS))
def test_embedded_shards_read_bit_identical_to_before(subdir):
    from vidsage_core import paths

    folder = paths.YT8M / subdir
    if not folder.exists():
        pytest.skip(f"{folder} not present")
    v = read_tfrecords(folder, progress=False)
    count, digest = EMBEDDED_DIGESTS[subdir]
    assert len(v) == count and len(v.skipped) == 0
    assert _digest(v) == digest


def test_frame_level_reads_bit_identical_to_before(tmp_path):
    """Written by tf.train.SequenceExample now, read by parse_sequence_example: same values as before."""
    rng = np.random.default_rng(7)  # NumPy's generator only: the same bytes on every machine and thread count
    lengths = rng.integers(1, 30, 40)
    rgb = [rng.integers(0, 256, (f, 1024), dtype=np.uint8) for f in lengths]
    audio = [rng.integers(0, 256, (f, 128), dtype=np.uint8) for f in lengths]
    labels = [sorted(set(rng.integers(0, 3862, rng.integers(0, 4)).tolist())) for _ in lengths]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", [f"v{i:02d}" for i in range(40)], rgb, audio, labels)
    v = read_tfrecords(path, level="frame", pooling="mean+std+top3", max_frames=20, keep_frames=True, progress=False)
    assert len(v) == 40 and v.rgb.shape == (40, 5 * 1024)
    assert _digest(v) == RANDOM_FRAME_DIGEST


def test_widths_come_from_the_first_record_and_must_agree(tmp_path):
    rng = np.random.default_rng(5)
    a = write_video_level_tfrecord(tmp_path / "a.tfrecord", ["a0", "a1"], rng.standard_normal((2, 1280)),
                                   np.zeros((2, 100)), [[1], [2]])
    b = write_video_level_tfrecord(tmp_path / "b.tfrecord", ["b0", "b1", "b2"],
                                   rng.standard_normal((3, 1280)), np.zeros((3, 100)), [[1], [2], [3]])
    # b's record 1 with a 1024-d rgb: differs from the first record's 1280
    odd = write_video_level_tfrecord(tmp_path / "odd.tfrecord", ["x"], rng.standard_normal((1, 1024)),
                                     np.zeros((1, 100)), [[4]])
    from vidsage_core.data.tfrecord import encode_record, frame_records

    buf = b.read_bytes()
    spans, _ = frame_records(buf)
    _, odd_start, odd_len = frame_records(odd.read_bytes())[0][0]
    start, end = spans[1][1] - 12, spans[1][1] + spans[1][2] + 4
    b.write_bytes(buf[:start] + encode_record(odd.read_bytes()[odd_start:odd_start + odd_len]) + buf[end:])
    odd.unlink()
    v = read_tfrecords(a, progress=False)
    assert v.rgb.shape == (2, 1280) and v.audio.shape == (2, 100)
    with pytest.raises(TFRecordError, match=r"b\.tfrecord: record 1 .*wrong_length: 'mean_rgb' has 1024 floats, "
                                            r"expected 1280 \(the width of .*a\.tfrecord record 0\)"):
        read_tfrecords(tmp_path, progress=False)
    with pytest.warns(UserWarning, match="wrong_length: 1"):
        v = read_tfrecords(tmp_path, on_error="skip", progress=False)
    assert v.ids.tolist() == ["a0", "a1", "b0", "b2"] and v.rgb.shape == (4, 1280)
    # given widths are checked as given
    with pytest.raises(TFRecordError, match=r"a\.tfrecord: record 0 .*'mean_rgb' has 1280 floats, expected 1024$"):
        read_tfrecords(tmp_path, rgb_dim=1024, audio_dim=100, progress=False)
    with pytest.raises(TFRecordError, match=r"a\.tfrecord: record 0 .*'mean_audio' has 100 floats, expected 128$"):
        read_tfrecords(tmp_path, audio_dim=128, progress=False)  # one width given, the other from the data
    assert read_tfrecords(a, rgb_dim=1280, progress=False).audio.shape == (2, 100)


def test_other_feature_sizes(tmp_path):
    """Files with other feature sizes (e.g. 1280-d EfficientNet from `vidsage ingest`) via rgb_dim."""
    rng = np.random.default_rng(4)
    rgb = rng.standard_normal((2, 1280)).astype(np.float32)
    audio = np.zeros((2, 128), np.float32)
    path = write_video_level_tfrecord(tmp_path / "v.tfrecord", ["a", "b"], rgb, audio, [[1], [2]])
    with pytest.raises(TFRecordError, match="wrong_length: 'mean_rgb' has 1280 floats, expected 1024"):
        read_tfrecords(path, rgb_dim=1024, audio_dim=128, progress=False)  # YouTube-8M's widths, asked for
    v = read_tfrecords(path, progress=False)  # default: widths from the data
    np.testing.assert_array_equal(v.rgb, rgb)
    np.testing.assert_array_equal(read_tfrecords(path, rgb_dim=1280, audio_dim=128, progress=False).rgb, rgb)
    q = [rng.integers(0, 256, (3, 1280), dtype=np.uint8)]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["c"], q, [np.zeros((3, 128), np.uint8)], [[0]],
                                      rgb_dim=1280)
    f = read_tfrecords(path, level="frame", keep_frames=True, progress=False)
    assert f.rgb.shape == (1, 1280) and f.frames.shape == (1, 3, 1408)
    np.testing.assert_allclose(f.rgb[0], dequantize(q[0]).mean(0), atol=1e-6)
