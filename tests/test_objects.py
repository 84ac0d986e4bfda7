"""Tests for vidsage_core.objects: detections files, frame codebooks, proxy concepts, registry."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.sparse as sp

from vidsage_core.data import VideoSet
from vidsage_core.objects import (
    OBJECT_SOURCES,
    DetectionsFile,
    FeatureCodebookProxy,
    FrameCodebook,
    ObjectSource,
    VideoSetObjects,
    get_object_source,
    register_object_source,
    write_detections,
)


def make_videoset(n: int, seed: int = 0, frames=None, num_frames=None, objects=None) -> VideoSet:
    rng = np.random.default_rng(seed)
    return VideoSet(
        ids=np.array([f"v{i:03d}" for i in range(n)]),
        rgb=rng.normal(size=(n, 1024)).astype(np.float32),
        audio=rng.normal(size=(n, 128)).astype(np.float32),
        labels=sp.csr_matrix((n, 3862), dtype=np.float32),
        source="test",
        frames=frames,
        num_frames=num_frames,
        objects=objects,
    )


# ------------------------------------------------------------------------------ detections
def test_detections_json_labels_only(tmp_path):
    p = tmp_path / "det.json"
    p.write_text(json.dumps({"v000": ["dog", "ball", "dog"], "v001": [], "zzz": ["cat"]}))
    vs = make_videoset(3)
    src = DetectionsFile(p)
    with pytest.warns(UserWarning, match="1 of 3 videos are missing.*1 ids in the file"):
        sets = src.object_sets(vs)
    assert sets == [frozenset({"dog", "ball"}), frozenset(), frozenset()]
    rep = src.report
    assert (rep.videos, rep.videos_missing, rep.unknown_ids) == (3, 1, 1)
    assert rep.videos_with_objects == 1
    assert rep.entries == 4
    assert src.name == f"detections:{p}"
    assert isinstance(src, ObjectSource)


def test_detections_json_scores_and_frames(tmp_path):
    p = tmp_path / "det.json"
    p.write_text(json.dumps({
        "v000": [
            {"label": "dog", "frame": 0, "score": 0.9},
            {"label": "dog", "frame": 0, "score": 0.8},  # same frame: counts once
            {"label": "dog", "frame": 5, "score": 0.7},
            {"label": "cat", "frame": 1, "score": 0.2},  # below min_score
            {"label": "cat", "frame": 2, "score": 0.95},
            {"label": "car"},  # no frame, no score (= 1.0): one observation
            {"label": "car"},
        ],
        "v001": ["tree"],
    }))
    vs = make_videoset(2)
    # min_frames=1: every label with a detection >= 0.5.
    assert DetectionsFile(p, min_score=0.5).object_sets(vs)[0] == {"dog", "cat", "car"}
    # min_frames=2: dog (frames 0, 5) and car (2 frameless observations); cat has 1 frame >= 0.5.
    src = DetectionsFile(p, min_score=0.5, min_frames=2)
    sets = src.object_sets(vs)
    assert sets == [frozenset({"dog", "car"}), frozenset()]  # tree seen once
    assert src.report.entries_below_score == 1
    assert src.report.labels_below_min_frames == 2  # cat, tree
    assert src.name == f"detections:{p}?min_score=0.5&min_frames=2"


def test_detections_csv(tmp_path):
    p = tmp_path / "det.csv"
    p.write_text("video_id,label,frame,score\n"
                 "v000,dog,0,0.9\n"
                 "v000,dog,3,0.6\n"
                 "v000,cat,1,0.3\n"
                 "v002,\"hot dog, food\",4,\n")  # quoted label with a comma, empty score = 1.0
    vs = make_videoset(3)
    src = DetectionsFile(p, min_score=0.5)
    with pytest.warns(UserWarning, match="1 of 3 videos are missing"):
        sets = src.object_sets(vs)
    assert sets == [frozenset({"dog"}), frozenset(), frozenset({"hot dog, food"})]
    assert (src.report.videos_missing, src.report.unknown_ids) == (1, 0)
    with pytest.warns(UserWarning):
        assert DetectionsFile(p, min_frames=2).object_sets(vs)[0] == {"dog"}


def test_detections_csv_without_optional_columns_and_bad_header(tmp_path):
    p = tmp_path / "det.csv"
    p.write_text("video_id,label\nv000,dog\nv001,cat\n")
    assert DetectionsFile(p).object_sets(make_videoset(2)) == [{"dog"}, {"cat"}]
    bad = tmp_path / "bad.csv"
    bad.write_text("vid,object\nv000,dog\n")
    with pytest.raises(ValueError, match="video_id,label"):
        DetectionsFile(bad).object_sets(make_videoset(1))
    with pytest.raises(FileNotFoundError, match="nope.json"):
        DetectionsFile(tmp_path / "nope.json").object_sets(make_videoset(1))


@pytest.mark.parametrize("suffix", [".json", ".csv"])
def test_write_detections_round_trip(tmp_path, suffix):
    dets = {"v000": [{"label": "dog", "frame": 1, "score": 0.9},
                     {"label": "dog", "frame": 2, "score": 0.4}],
            "v001": ["cat"]}
    p = write_detections(tmp_path / f"d{suffix}", dets)
    vs = make_videoset(2)
    assert DetectionsFile(p).object_sets(vs) == [{"dog"}, {"cat"}]
    assert DetectionsFile(p, min_score=0.5, min_frames=2).object_sets(vs)[0] == frozenset()


# ------------------------------------------------------------------------------ frame codebook
def frame_videoset():
    """Three prototype frames A, B, C (orthogonal); videos made of noisy copies of them."""
    rng = np.random.default_rng(0)
    protos = np.zeros((3, 1152), np.float32)
    protos[0, :10] = protos[1, 10:20] = protos[2, 20:30] = 1.0
    recipes = [[0] * 5 + [1], [1] * 4, [0] * 3 + [2] * 2, []]  # video 3 has no frames
    t = max(len(r) for r in recipes)
    frames = np.zeros((4, t, 1152), np.float16)
    for i, r in enumerate(recipes):
        for j, p in enumerate(r):
            frames[i, j] = protos[p] + 0.01 * rng.normal(size=1152)
    return make_videoset(4, frames=frames, num_frames=np.array([len(r) for r in recipes], np.int32))


def test_frame_codebook_min_frames():
    vs = frame_videoset()
    src = FrameCodebook(num_codewords=3, min_frames=2, seed=0, nredo=10).fit(vs)
    s = src.object_sets(vs)
    # Video 0: A x5 (kept), B x1 (< 2 frames); video 1: B x4; video 2: A x3, C x2; video 3: none.
    assert len(s[0]) == 1 and len(s[1]) == 1 and len(s[2]) == 2 and s[3] == frozenset()
    a, b = next(iter(s[0])), next(iter(s[1]))
    assert a != b and a in s[2] and b not in s[2]
    assert all(o.startswith("frame:c") for o in s[0] | s[1] | s[2])
    s1 = FrameCodebook(num_codewords=3, min_frames=1, seed=0, nredo=10).fit(vs).object_sets(vs)
    assert s1[0] == {a, b}
    assert src.name == "frame-codebook(c=3,m=2,seed=0)"


def test_frame_codebook_needs_frames():
    with pytest.raises(ValueError, match="needs frame-level features"):
        FrameCodebook(num_codewords=2).object_sets(make_videoset(3))


# ------------------------------------------------------------------------------ proxy concepts
def test_proxy_deterministic_and_inductive():
    vs = make_videoset(60, seed=1)
    train = np.arange(40)
    a = FeatureCodebookProxy("audio", num_subspaces=4, num_codewords=5, top=2, seed=3)
    sa = a.fit(vs, train).object_sets(vs)
    sb = FeatureCodebookProxy("audio", num_subspaces=4, num_codewords=5, top=2,
                              seed=3).fit(vs, train).object_sets(vs)
    assert sa == sb  # same seed, same sets
    assert a.fit_videos == 40
    assert all(len(s) == 4 * 2 for s in sa)  # one word per sub-space, top 2 each
    assert all(o.startswith("audio:s") and ":c" in o for o in sa[0])
    assert {o.split(":")[1] for o in sa[0]} == {"s0", "s1", "s2", "s3"}
    assert a.name.startswith("proxy-audio(")
    # Fitting on the training rows only: the codebooks never saw rows 40..59, yet assign them;
    # the same model applied to a subset gives the same sets for those rows.
    assert a.object_sets(vs.subset(np.arange(40, 60))) == sa[40:]


def test_proxy_codewords_follow_clusters():
    # Two well-separated groups of videos must get different words in every sub-space.
    rng = np.random.default_rng(2)
    vs = make_videoset(40)
    vs.rgb[:] = rng.normal(scale=0.05, size=vs.rgb.shape)
    vs.rgb[:20] += 1.0
    vs.rgb[20:] -= 1.0
    src = FeatureCodebookProxy("rgb", num_subspaces=3, num_codewords=2, top=1).fit(vs)
    s = src.object_sets(vs)
    assert all(x == s[0] for x in s[:20]) and all(x == s[20] for x in s[20:])
    assert not (s[0] & s[20])


def test_proxy_rejects_bad_arguments():
    with pytest.raises(ValueError, match="modality"):
        FeatureCodebookProxy("depth")
    with pytest.raises(ValueError, match="codewords"):
        FeatureCodebookProxy("audio", num_subspaces=2, num_codewords=50).fit(make_videoset(10))


# ------------------------------------------------------------------------------ registry
def test_get_object_source_specs(tmp_path):
    src = get_object_source(f"detections:{tmp_path}/d.csv?min_score=0.5&min_frames=2")
    assert isinstance(src, DetectionsFile)
    assert (str(src.path), src.min_score, src.min_frames) == (f"{tmp_path}/d.csv", 0.5, 2)
    p = get_object_source("proxy-audio?num_subspaces=2&num_codewords=8")
    assert isinstance(p, FeatureCodebookProxy)
    assert (p.modality, p.num_subspaces, p.num_codewords) == ("audio", 2, 8)
    assert get_object_source("proxy-subspace").modality == "rgb+audio"
    assert get_object_source("proxy-rgb+audio").name.startswith("proxy-rgb+audio(")
    assert isinstance(get_object_source("frame-codebook?min_frames=5"), FrameCodebook)
    with pytest.raises(ValueError, match="unknown object source 'yolo'.*known"):
        get_object_source("yolo")
    with pytest.raises(ValueError, match="needs a path"):
        get_object_source("detections")
    with pytest.raises(ValueError, match="bogus"):
        get_object_source("proxy-audio?bogus=1")


def test_register_object_source_hook(tmp_path):
    # What the raw-video tagger does: write a detections file, hand back a DetectionsFile.
    def tagger(arg=None, **opts):
        path = write_detections(tmp_path / "tags.json", {"v000": ["dog"], "v001": ["cat"]})
        return DetectionsFile(path, **opts)

    register_object_source("test-tagger", tagger)
    try:
        with pytest.raises(ValueError, match="already registered"):
            register_object_source("test-tagger", tagger)
        src = get_object_source("test-tagger?min_score=0.1")
        assert src.object_sets(make_videoset(2)) == [{"dog"}, {"cat"}]
    finally:
        del OBJECT_SOURCES["test-tagger"]


def test_videoset_objects_source():
    vs = make_videoset(2, objects=[frozenset({"a"}), frozenset()])
    assert get_object_source("videoset").object_sets(vs) == [{"a"}, frozenset()]
    with pytest.raises(ValueError, match="carries no object sets"):
        VideoSetObjects().object_sets(make_videoset(2))


# ------------------------------------------------------------------ saving without pickle
def test_fitted_proxy_source_round_trips_through_json_and_npz(tmp_path, tiny_videoset):
    from vidsage_core.objects import FeatureCodebookProxy, load_object_source, save_object_source

    src = FeatureCodebookProxy(num_subspaces=4, num_codewords=8, top=1, seed=3).fit(tiny_videoset, np.arange(150))
    path = save_object_source(src, tmp_path / "object_source.json")
    assert json.loads(path.read_text())["type"] == "FeatureCodebookProxy"
    back = load_object_source(path)
    assert back.name == src.name and back.fit_videos == 150
    for a, b in zip(src.codebooks, back.codebooks):
        np.testing.assert_array_equal(a, b)
    assert back.object_sets(tiny_videoset) == src.object_sets(tiny_videoset)


def test_other_sources_round_trip_and_unknown_types_are_refused(tmp_path):
    from vidsage_core.objects import (DetectionsFile, FrameCodebook, VideoSetObjects, load_object_source,
                                      save_object_source)

    cb = FrameCodebook(num_codewords=4, min_frames=2)
    cb.centroids, cb.fit_videos = np.eye(4, 6, dtype=np.float32), 7
    back = load_object_source(save_object_source(cb, tmp_path / "a.json"))
    assert back.name == cb.name and back.fit_videos == 7
    np.testing.assert_array_equal(back.centroids, cb.centroids)
    det = DetectionsFile(tmp_path / "d.csv", min_score=0.5, min_frames=2)
    assert load_object_source(save_object_source(det, tmp_path / "b.json")).name == det.name
    assert load_object_source(save_object_source(VideoSetObjects(), tmp_path / "c.json")).name == "videoset-objects"
    (tmp_path / "c.json").write_text(json.dumps({"type": "os.system", "params": {}}))
    with pytest.raises(ValueError, match="unknown object source type 'os.system'"):
        load_object_source(tmp_path / "c.json")


def test_codebook_kmeans_is_faiss_kmeans_without_its_stderr_warning(capfd):
    # Few points per centroid (as on the 1,125-video stand-ins): FAISS would print a warning on
    # every fit; _kmeans must give exactly FAISS's centroids and print nothing.
    import faiss

    from vidsage_core.objects import _kmeans

    x = np.random.default_rng(0).normal(size=(300, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    capfd.readouterr()
    ours = _kmeans(x, 32, seed=0, niter=20, what="test")
    assert capfd.readouterr().err == ""
    km = faiss.Kmeans(16, 32, niter=20, seed=0, spherical=True, verbose=False, max_points_per_centroid=1 << 30)
    km.train(x)
    assert "WARNING clustering 300 points" in capfd.readouterr().err
    np.testing.assert_array_equal(ours, km.centroids)
