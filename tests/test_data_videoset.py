"""VideoSet: features, subset, the VidSage store (save / load with mmap), SkipReport."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from vidsage_core.data import SkipReport, VideoSet, labels_to_csr, read_tfrecords


def _tiny() -> VideoSet:
    rgb = np.zeros((3, 1024), np.float32)
    audio = np.zeros((3, 128), np.float32)
    rgb[0, 0], audio[0, 0] = 3.0, 4.0  # concatenated norm 5
    rgb[1, :2] = [1.0, 1.0]  # norm sqrt 2, no audio
    # row 2 all zero
    return VideoSet(ids=np.array(["a", "b", "c"]), rgb=rgb, audio=audio,
                    labels=labels_to_csr([[0], [1, 2], []], 5), num_classes=5, source="hand")


def test_features_concatenate_then_l2_normalise():
    v = _tiny()
    f = v.features()
    assert f.shape == (3, 1152) and f.dtype == np.float32
    assert f[0, 0] == pytest.approx(0.6) and f[0, 1024] == pytest.approx(0.8)  # 3/5 and 4/5
    np.testing.assert_allclose(f[1, :2], [2**-0.5, 2**-0.5], rtol=1e-6)
    assert not f[2].any()  # an all-zero row stays zero (no NaN)
    np.testing.assert_array_equal(v.features("rgb", normalize=False), v.rgb)
    assert v.features("audio")[0, 0] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="modality"):
        v.features("video")


def test_labels_to_csr_hand_example():
    m = labels_to_csr([[2, 0, 2], [], [1]], 3)
    np.testing.assert_array_equal(m.toarray(), [[1, 0, 1], [0, 0, 0], [0, 1, 0]])
    assert m.dtype == np.float32
    with pytest.raises(ValueError, match="out of range"):
        labels_to_csr([[3]], 3)


def test_subset_by_index_mask_and_slice(tiny_videoset):
    v = tiny_videoset
    idx = np.array([5, 0, 7])
    s = v.subset(idx)
    assert s.ids.tolist() == [v.ids[5], v.ids[0], v.ids[7]]
    np.testing.assert_array_equal(s.rgb, v.rgb[idx])
    np.testing.assert_array_equal(s.labels.toarray(), v.labels[idx].toarray())
    assert s.objects == [v.objects[5], v.objects[0], v.objects[7]]
    np.testing.assert_array_equal(s.topics, v.topics[idx])
    mask = np.zeros(len(v), bool)
    mask[[1, 3]] = True
    assert v.subset(mask).ids.tolist() == [v.ids[1], v.ids[3]]
    assert len(v.subset(slice(10, 20))) == 10 and v.subset(idx).synthetic


def test_shape_checks():
    v = _tiny()
    with pytest.raises(ValueError, match="labels has shape"):
        VideoSet(ids=v.ids, rgb=v.rgb, audio=v.audio, labels=v.labels, num_classes=6)
    with pytest.raises(ValueError, match="rgb has shape"):
        VideoSet(ids=v.ids[:2], rgb=v.rgb, audio=v.audio[:2], labels=v.labels[:2], num_classes=5)


def test_store_round_trip_memory_mapped(tmp_path, tiny_videoset):
    v = tiny_videoset
    v.save(tmp_path / "store")
    back = VideoSet.load(tmp_path / "store")
    assert isinstance(back.rgb, np.memmap) and isinstance(back.audio, np.memmap)
    assert not back.rgb.flags.writeable
    np.testing.assert_array_equal(back.rgb, v.rgb)
    np.testing.assert_array_equal(back.audio, v.audio)
    assert back.ids.tolist() == v.ids.tolist()
    assert (back.labels != v.labels).nnz == 0 and isinstance(back.labels, sp.csr_matrix)
    assert back.objects == v.objects and back.synthetic and back.source == v.source
    np.testing.assert_array_equal(back.topics, v.topics)
    assert back.num_classes == 50 and back.skipped is None
    np.testing.assert_allclose(back.features(), v.features())
    in_memory = VideoSet.load(tmp_path / "store", mmap=False)
    assert not isinstance(in_memory.rgb, np.memmap)


def test_store_keeps_skip_report_frames_and_pooling(tmp_path):
    from vidsage_core.data import write_frame_level_tfrecord

    rng = np.random.default_rng(0)
    q = [rng.integers(0, 256, (f, 1024), dtype=np.uint8) for f in (2, 4)]
    a = [rng.integers(0, 256, (f, 128), dtype=np.uint8) for f in (2, 4)]
    path = write_frame_level_tfrecord(tmp_path / "f.tfrecord", ["x", "y"], q, a, [[1], []])
    v = read_tfrecords(path, level="frame", keep_frames=True, pooling="mean+std", progress=False)
    v.save(tmp_path / "s")
    back = VideoSet.load(tmp_path / "s")
    np.testing.assert_array_equal(back.frames, v.frames)
    np.testing.assert_array_equal(back.num_frames, [2, 4])
    assert back.pooling == "mean+std" and back.rgb.shape == (2, 2048)
    assert back.skipped.info == {"unlabelled": 1} and back.skipped.records_read == 2
    assert back.objects is None and not back.synthetic
    # saving a store without frames over it removes the stale frame arrays
    VideoSet(ids=v.ids, rgb=v.rgb, audio=v.audio, labels=v.labels, num_classes=v.num_classes).save(tmp_path / "s")
    assert VideoSet.load(tmp_path / "s").frames is None


def test_incomplete_store_is_refused(tmp_path):
    (tmp_path / "half").mkdir()
    with pytest.raises(FileNotFoundError, match="no meta.json"):
        VideoSet.load(tmp_path / "half")


def test_skip_report_counts_and_summary():
    r = SkipReport(files_read=2, records_read=10)
    r.add("f1", 3, "data_crc", "payload fails its CRC", 120)
    r.add("f1", 5, "non_finite")
    r.add("f2", 0, "data_crc")
    r.note("unlabelled", 2)
    assert len(r) == 3 and r.counts() == {"data_crc": 2, "non_finite": 1}
    text = r.summary()
    assert "read 10 records from 2 files; skipped 3" in text
    assert "data_crc: 2" in text and "non_finite: 1" in text and "f1 record 3 @ byte 120" in text
    assert "info: unlabelled: 2" in text
    assert SkipReport.from_dict(r.to_dict()) == r
