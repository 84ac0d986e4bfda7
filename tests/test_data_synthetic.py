"""make_synthetic / write_synthetic_frame_level: determinism, schema, and that topics drive everything."""

from __future__ import annotations

import re

import numpy as np
import pytest
from scipy.stats import spearmanr

from vidsage_core.data import make_synthetic, read_tfrecords, write_synthetic_frame_level


@pytest.fixture(scope="module")
def videos():
    return make_synthetic(3000, num_classes=300, num_topics=12, num_objects=150, seed=3)


def test_schema_and_flags(tiny_videoset):
    v = tiny_videoset
    assert v.synthetic and v.source.startswith("synthetic(") and "seed=0" in v.source
    assert v.rgb.shape == (200, 1024) and v.audio.shape == (200, 128) and v.rgb.dtype == np.float32
    assert v.labels.shape == (200, 50) and v.num_classes == 50
    assert len(set(v.ids.tolist())) == 200 and v.ids[0] == "syn00000000"
    assert len(v.objects) == 200 and all(isinstance(s, frozenset) and s for s in v.objects)
    assert all(re.fullmatch(r"obj_\d+", o) for s in v.objects for o in s)
    assert v.rgb.min() >= -2 and v.rgb.max() <= 2  # YouTube-8M's value range
    per_video = np.diff(v.labels.indptr)
    assert per_video.min() >= 1 and per_video.max() <= 15
    assert v.topics.shape == (200,) and v.topics.max() < 8


def test_deterministic_for_a_seed():
    a = make_synthetic(300, num_classes=40, seed=7)
    b = make_synthetic(300, num_classes=40, seed=7)
    c = make_synthetic(300, num_classes=40, seed=8)
    np.testing.assert_array_equal(a.rgb, b.rgb)
    np.testing.assert_array_equal(a.audio, b.audio)
    assert (a.labels != b.labels).nnz == 0 and a.objects == b.objects
    assert not np.array_equal(a.rgb, c.rgb)


def test_float16_option():
    a = make_synthetic(100, num_classes=20, seed=1)
    h = make_synthetic(100, num_classes=20, seed=1, dtype=np.float16)
    assert h.rgb.dtype == np.float16 and h.audio.dtype == np.float16
    np.testing.assert_array_equal(h.rgb, a.rgb.astype(np.float16))  # same draws, rounded
    assert h.features().dtype == np.float32
    with pytest.raises(ValueError, match="dtype"):
        make_synthetic(10, dtype=np.float64)


def test_label_frequencies_are_zipf_like(videos):
    counts = np.asarray(videos.labels.sum(axis=0)).ravel()
    # popularity falls with the class index (rank): strong negative rank correlation
    rho, _ = spearmanr(np.arange(len(counts)), counts)
    assert rho < -0.7
    assert counts[:10].sum() > 5 * counts[-100:].sum() / 10  # head classes far above tail ones
    assert 2.0 < np.diff(videos.labels.indptr).mean() < 3.5  # about YouTube-8M's 3 labels per video


def test_topics_drive_labels_features_and_objects(videos):
    topics = videos.topics
    # labels: a class's videos concentrate on one topic far beyond the topic's base rate
    dense = videos.labels.toarray() > 0
    frequent = np.flatnonzero(dense.sum(0) >= 30)
    share = [np.bincount(topics[dense[:, c]], minlength=12).max() / dense[:, c].sum() for c in frequent]
    assert np.mean(share) > 0.5  # chance would be about 1/12 .. the biggest topic's share
    # features: nearest topic centroid (from half the data) recovers the topic of the other half
    x = videos.features()
    half = len(x) // 2
    centroids = np.stack([x[:half][topics[:half] == t].mean(0) for t in range(12)])
    accuracy = (np.argmax(x[half:] @ centroids.T, axis=1) == topics[half:]).mean()
    assert accuracy > 0.9
    # objects: same-topic pairs share far more objects than cross-topic pairs
    rng = np.random.default_rng(0)
    i, j = rng.integers(0, len(x), (2, 4000))

    def jaccard(a, b):
        return len(a & b) / len(a | b)

    same = [jaccard(videos.objects[p], videos.objects[q]) for p, q in zip(i, j) if topics[p] == topics[q] and p != q]
    diff = [jaccard(videos.objects[p], videos.objects[q]) for p, q in zip(i, j) if topics[p] != topics[q]]
    assert np.mean(same) > 3 * np.mean(diff)


def test_frame_level_file_follows_the_same_videos(tmp_path):
    path = write_synthetic_frame_level(tmp_path / "syn.tfrecord", 12, (3, 25), seed=5, num_classes=60)
    v = read_tfrecords(path, level="frame", num_classes=60, keep_frames=True, progress=False)
    ref = make_synthetic(12, num_classes=60, seed=5)
    assert v.ids.tolist() == ref.ids.tolist() and (v.labels != ref.labels).nnz == 0
    assert v.num_frames.min() >= 3 and v.num_frames.max() <= 25
    # the frame mean tracks the topic-driven video vector: much closer to it than to other videos
    err = np.abs(v.rgb - ref.rgb).mean(axis=1)
    other = np.abs(v.rgb - np.roll(ref.rgb, 1, axis=0)).mean(axis=1)
    assert (err < 0.5 * other).all()
    # same file for the same arguments
    again = write_synthetic_frame_level(tmp_path / "again.tfrecord", 12, (3, 25), seed=5, num_classes=60)
    assert again.read_bytes() == path.read_bytes()
