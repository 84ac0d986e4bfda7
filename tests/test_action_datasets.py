"""Charades / Moments in Time adapters on tiny files in the official formats, written here."""

from __future__ import annotations

import numpy as np
import pytest

from vidsage_core.action_datasets import (
    CHARADES_COLUMNS,
    make_synthetic_charades,
    make_synthetic_moments,
    parse_charades_actions,
    read_charades,
    read_moments,
)

HEADER = ",".join(CHARADES_COLUMNS)


def _charades_files(tmp_path):
    ann, feat = tmp_path / "annotations", tmp_path / "features"
    ann.mkdir()
    feat.mkdir()
    # Rows as in the official CSVs: quoted free text with commas, actions "cNNN start end;...".
    (ann / "Charades_v1_train.csv").write_text(
        HEADER + "\n"
        'AAAAA,HR43,Kitchen,6,7,Yes,"A person cooks, then eats.",food;dish,"cooks, eats",'
        '"c092 11.90 21.20;c147 0.00 12.60",30.00\n'
        "BBBBB,HR43,Bedroom,5,7,Yes,A person sleeps.,bed,sleeps,"
        "c000 1.00 5.00;c092 2.0 3.0;c000 7.0 9.0,20.5\n"
        "CCCCC,HR44,Hallway,,,No,Nothing happens.,,,,12.0\n"
        "DDDDD,HR45,Garage,4,4,Yes,Missing features.,,,c156 0.0 1.0,10.0\n"
    )
    (ann / "Charades_v1_test.csv").write_text(
        HEADER + "\n"
        "EEEEE,HR46,Kitchen,7,7,Yes,A person drinks.,cup,drinks,c106 3.30 9.00,15.0\n"
    )
    d = 6
    # AAAAA frame-level [3, 6]; others video-level [6]; DDDDD has no feature file.
    frames = np.array([[3, 0, 0, 0, 0, 0], [0, 4, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]], np.float32)
    np.save(feat / "AAAAA.npy", frames)
    np.save(feat / "BBBBB.npy", np.array([0, 0, 2, 0, 0, 0], np.float32))
    np.save(feat / "CCCCC.npy", np.ones(d, np.float32))
    np.save(feat / "EEEEE.npy", np.array([0, 0, 0, 0, 0, -5], np.float32))
    return feat, ann


def test_parse_charades_actions():
    assert parse_charades_actions("c092 11.90 21.20;c147 0.00 12.60") == [92, 147]
    assert parse_charades_actions("") == []
    with pytest.raises(ValueError, match="c157"):
        parse_charades_actions("c157 0.0 1.0")
    with pytest.raises(ValueError, match="malformed"):
        parse_charades_actions("x12 0 1")


def test_read_charades_official_format(tmp_path):
    feat, ann = _charades_files(tmp_path)
    with pytest.warns(UserWarning, match="1 of 5 annotated videos left out"):
        vs, split = read_charades(feat, ann, progress=False)
    assert list(vs.ids) == ["AAAAA", "BBBBB", "CCCCC", "EEEEE"]
    assert vs.num_classes == 157 and vs.labels.shape == (4, 157)
    dense = vs.labels.toarray()
    assert np.flatnonzero(dense[0]).tolist() == [92, 147]
    assert np.flatnonzero(dense[1]).tolist() == [0, 92]  # c000 twice -> one label
    assert dense[2].sum() == 0  # empty actions: kept, no label
    assert np.flatnonzero(dense[3]).tolist() == [106]
    # mean over frames [1, 4/3, 0, ...] then L2: [3/5, 4/5, 0, ...]
    np.testing.assert_allclose(vs.rgb[0], [0.6, 0.8, 0, 0, 0, 0], atol=1e-6)
    np.testing.assert_allclose(vs.rgb[1], [0, 0, 1, 0, 0, 0])
    np.testing.assert_allclose(vs.rgb[2], np.full(6, 1 / np.sqrt(6)), rtol=1e-6)
    assert vs.audio.shape == (4, 0) and vs.rgb.dtype == np.float32
    assert split.train.tolist() == [0, 1, 2] and split.test.tolist() == [3] and split.val.size == 0
    assert not vs.synthetic and "synthetic" not in vs.source
    # the missing file is counted and named, not silently dropped
    assert vs.skipped.counts() == {"missing features": 1}
    rec = vs.skipped.records[0]
    assert rec["file"].endswith("DDDDD.npy") and rec["index"] == 3
    assert "Charades_v1_train.csv" in rec["detail"]
    assert vs.skipped.info == {"unlabelled": 1}


def test_read_charades_dimension_mismatch(tmp_path):
    feat, ann = _charades_files(tmp_path)
    np.save(feat / "EEEEE.npy", np.ones(7, np.float32))
    with pytest.raises(ValueError, match="EEEEE.npy: feature dimension 7"):
        read_charades(feat, ann, progress=False)
    with pytest.warns(UserWarning, match="bad features: 1"):
        vs, _ = read_charades(feat, ann, on_error="skip", progress=False)
    assert len(vs) == 3 and vs.skipped.counts() == {"missing features": 1, "bad features": 1}


def _moments_files(tmp_path):
    ann, feat = tmp_path / "annotations", tmp_path / "features"
    ann.mkdir()
    (ann / "moments_categories.txt").write_text("adult+female+singing,0\nblocking,1\ndancing,2\n")
    (ann / "trainingSet.csv").write_text(
        "blocking/getty-karate-video-id635808620_4.mp4,blocking,3,0\n"
        "dancing/yt-5of6ffo6-Bw_205.mp4,dancing,2,1\n"
        "adult+female+singing/0000_1.mp4,adult+female+singing,3,1\n"
    )
    (ann / "validationSet.csv").write_text("dancing/yt-abc_1.mp4,dancing,4,0\n"
                                         "blocking/x_2.mp4,blocking,3,0\n")
    for rel, vec in (("training/blocking/getty-karate-video-id635808620_4", [[1, 0], [0, 1]]),
                     ("training/dancing/yt-5of6ffo6-Bw_205", [0, 2]),
                     ("training/adult+female+singing/0000_1", [1, 1]),
                     ("validation/dancing/yt-abc_1", [3, 4])):
        (feat / rel).parent.mkdir(parents=True, exist_ok=True)
        np.save(feat / f"{rel}.npy", np.asarray(vec, np.float32))
    return feat, ann


def test_read_moments_official_format(tmp_path):
    feat, ann = _moments_files(tmp_path)
    with pytest.warns(UserWarning, match="missing features: 1"):
        vs, split = read_moments(feat, ann, progress=False)
    assert vs.num_classes == 3
    assert vs.ids.tolist() == ["training/blocking/getty-karate-video-id635808620_4",
                               "training/dancing/yt-5of6ffo6-Bw_205",
                               "training/adult+female+singing/0000_1", "validation/dancing/yt-abc_1"]
    assert vs.labels.toarray().argmax(1).tolist() == [1, 2, 0, 2]
    assert (vs.labels.sum(axis=1).A1 == 1).all()  # single-label
    np.testing.assert_allclose(vs.rgb[0], [1 / np.sqrt(2)] * 2, rtol=1e-6)  # mean [.5, .5] -> L2
    np.testing.assert_allclose(vs.rgb[3], [0.6, 0.8], rtol=1e-6)
    assert split.train.tolist() == [0, 1, 2] and split.test.tolist() == [3]
    rec = vs.skipped.records[0]
    assert rec["file"].endswith("validation/blocking/x_2.npy") and rec["index"] == 1


def test_read_moments_unknown_label(tmp_path):
    feat, ann = _moments_files(tmp_path)
    (ann / "validationSet.csv").write_text("jumping/a.mp4,jumping,3,0\n")
    with pytest.raises(ValueError, match="validationSet.csv row 0: label 'jumping'"):
        read_moments(feat, ann, progress=False)


def test_synthetic_charades_round_trip(tmp_path):
    layout = make_synthetic_charades(tmp_path / "ch", num_videos=40, seed=3, feature_dim=16,
                                     missing_features=2)
    with pytest.warns(UserWarning, match="2 of 40"):
        vs, split = read_charades(layout.features_dir, layout.annotations_dir, val_fraction=0.3,
                                  progress=False)
    assert vs.synthetic and "synthetic" in vs.source and len(vs) == 38 and vs.rgb.shape == (38, 16)
    assert len(split.train) + len(split.val) + len(split.test) == 38 and len(split.val) > 0
    np.testing.assert_allclose(np.linalg.norm(vs.rgb, axis=1), 1.0, rtol=1e-5)
    # deterministic in the seed
    again = make_synthetic_charades(tmp_path / "ch2", num_videos=40, seed=3, feature_dim=16,
                                    missing_features=2)
    assert ((again.annotations_dir / "Charades_v1_train.csv").read_text()
            == (layout.annotations_dir / "Charades_v1_train.csv").read_text())


def test_synthetic_moments_round_trip(tmp_path):
    layout = make_synthetic_moments(tmp_path / "mit", num_videos=30, seed=1, num_classes=12, feature_dim=8)
    vs, split = read_moments(layout.features_dir, layout.annotations_dir, progress=False)
    assert vs.synthetic and "synthetic" in vs.source and vs.num_classes == 12 and len(vs) == 30
    assert len(split.test) == 8 and (vs.labels.sum(axis=1).A1 == 1).all()
    assert vs.skipped.counts() == {}
