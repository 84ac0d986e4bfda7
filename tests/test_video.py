"""Raw video in: decoding, frame features, ImageNet tags, TFRecords, ingest, similar, latency.

Clips are made here with PyAV. Two kinds, both small:
* counter clips (synthetic): frame i is flat grey 20 + 2i, so a sampled frame's pixels tell
  which source frame it was;
* photo clips: scikit-image's real photographs (chelsea the cat, coffee) encoded as a 2 s
  clip with a slow pan (the motion is synthetic, the pixels are not).
The CNN runs on CPU on 2-frame clips to keep the file fast.
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from vidsage_core import video as V
from vidsage_core.cli import main as cli_main

CAT_CLASSES = {281, 282, 285}  # tabby, tiger cat, Egyptian cat
COFFEE_CLASSES = {967, 968}  # espresso, cup


def counter_clip(path: Path, n: int = 100, fps: int = 25, size: tuple[int, int] = (64, 48)) -> Path:
    """Synthetic clip: frame i is flat grey 20 + 2 i (codec from the extension)."""
    import av

    codec = {".avi": "mpeg4", ".webm": "libvpx"}.get(path.suffix, "libx264")
    with av.open(str(path), "w") as out:
        s = out.add_stream(codec, rate=fps)
        s.width, s.height, s.pix_fmt = size[0], size[1], "yuv420p"
        s.bit_rate = 4_000_000  # near-lossless: the grey level must survive the codec
        for i in range(n):
            img = np.full((size[1], size[0], 3), 20 + 2 * i, np.uint8)
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in s.encode():
            out.mux(p)
    return path


@pytest.fixture(scope="module")
def encoder() -> V.FrameEncoder:
    return V.FrameEncoder("cpu", batch_size=8)


@pytest.fixture(scope="module")
def photo_clips(tmp_path_factory) -> dict[str, Path]:
    """Real photographs as 2 s clips (10 fps, 16 px pan): chelsea.mp4, coffee.mkv, astronaut.avi (+audio)."""
    from skimage import data

    d = tmp_path_factory.mktemp("photos")
    return {"chelsea": V.make_still_clip(d / "chelsea.mp4", data.chelsea(), seconds=2, fps=10),
            "coffee": V.make_still_clip(d / "coffee.mkv", data.coffee(), seconds=2, fps=10),
            "astronaut": V.make_still_clip(d / "astronaut.avi", data.astronaut()[::2, ::2], seconds=2, fps=10,
                                           audio=True)}


@pytest.fixture(scope="module")
def processed(photo_clips, encoder) -> dict[str, V.VideoFeatures]:
    """Each photo clip decoded at 1 fps (2 frames), encoded and tagged once for the whole file."""
    tagger = V.ImageNetTagger(top_k=3, min_score=0.1, encoder=encoder)
    return {name: V.process_video(clip, encoder, tagger, rate=1.0, max_frames=2) for name, clip in photo_clips.items()}


# ------------------------------------------------------------------------------------ decoding
@pytest.mark.parametrize("ext", [".mp4", ".avi", ".mkv", ".webm"])
def test_sample_frames_by_timestamp(tmp_path, ext):
    clip = counter_clip(tmp_path / f"c{ext}")
    frames, ts = V.sample_frames(clip, rate=2.0, size=32)
    # 4 s at 25 fps, 2 samples/s: 8 frames; the frame for k/2 s is the first at or after it.
    assert frames.shape == (8, 32, 32, 3) and frames.dtype == np.uint8
    np.testing.assert_allclose(ts, [0.0, 0.52, 1.0, 1.52, 2.0, 2.52, 3.0, 3.52], atol=1e-6)
    # ... and the pixels are those source frames: index i = round(25 t), grey 20 + 2 i.
    expected = 20 + 2 * np.rint(ts * 25)
    np.testing.assert_allclose(frames.reshape(8, -1).mean(axis=1), expected, atol=3)


def test_sample_frames_rate_max_frames_and_native_size(tmp_path):
    clip = counter_clip(tmp_path / "c.mp4")
    frames, ts = V.sample_frames(clip, rate=1.0, size=None)
    assert frames.shape == (4, 48, 64, 3)
    np.testing.assert_allclose(ts, [0, 1, 2, 3], atol=1e-6)
    assert len(V.sample_frames(clip, rate=1.0, max_frames=3, size=16)[0]) == 3
    # Asking for more than the clip has: every frame once, in order.
    _, ts = V.sample_frames(clip, rate=100.0, size=16)
    np.testing.assert_allclose(ts, np.arange(100) / 25, atol=1e-6)
    with pytest.raises(ValueError, match="rate"):
        V.sample_frames(clip, rate=0)


def test_decode_errors_name_the_file(tmp_path):
    good = counter_clip(tmp_path / "good.mp4")
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size // 2])  # moov atom lost
    garbage = tmp_path / "garbage.mp4"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    empty = tmp_path / "empty.mkv"
    empty.write_bytes(b"")
    for bad in (truncated, garbage, empty, tmp_path / "missing.mp4"):
        with pytest.raises(V.VideoDecodeError) as info:
            V.sample_frames(bad)
        assert str(bad) in str(info.value) and info.value.path == str(bad)


def test_audio_only_file_has_no_video_stream(tmp_path):
    import av

    path = tmp_path / "tone.m4a"
    with av.open(str(path), "w") as out:
        s = out.add_stream("aac", rate=16000)
        s.layout = "mono"
        frame = av.AudioFrame.from_ndarray(np.zeros((1, 16000), np.float32), format="flt", layout="mono")
        frame.sample_rate = 16000
        for p in [*s.encode(frame), *s.encode()]:
            out.mux(p)
    with pytest.raises(V.VideoDecodeError, match="no video stream"):
        V.sample_frames(path)


# ------------------------------------------------------------------------------------ features
def test_encoder_shapes_and_logits_equal_forward(encoder):
    import torch

    frames = np.random.default_rng(0).integers(0, 256, (2, 224, 224, 3), dtype=np.uint8)
    feats, logits = encoder.encode(frames)
    assert feats.shape == (2, V.FEATURE_DIM) and logits.shape == (2, V.NUM_IMAGENET_CLASSES)
    assert feats.dtype == np.float32 and feats.min() >= 0 and feats.max() <= 6  # pooled ReLU6
    x = (torch.from_numpy(frames).permute(0, 3, 1, 2).float() - 127) / 128
    with torch.inference_mode():  # logits from the pooled features == the model's own forward()
        np.testing.assert_allclose(logits, encoder.model(x).numpy(), rtol=1e-4, atol=1e-4)
    with pytest.raises(ValueError, match="224"):
        encoder.encode(frames[:, :100])


def test_video_level_feature_is_normalised_mean():
    np.testing.assert_allclose(V.video_level_feature(np.array([[3.0, 0.0], [1.0, 0.0]])), [1.0, 0.0])
    np.testing.assert_allclose(V.video_level_feature(np.array([[1.0, 3.0], [1.0, -1.0]])),
                               [1 / np.sqrt(2), 1 / np.sqrt(2)], rtol=1e-6)


def test_imagenet_class_names():
    names = V.imagenet_class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert (names[0], names[285], names[967], names[968]) == ("tench", "Egyptian cat", "espresso", "cup")
    assert (names[134], names[517]) == ("crane (134)", "crane (517)")


def test_tag_logits_top_k_and_threshold(encoder):
    p = np.full(1000, 1e-12)
    p[[7, 3, 500]] = [0.5, 0.3, 0.2 - 997e-12]
    logits = np.log(p)[None]
    names = V.imagenet_class_names()
    tags = V.ImageNetTagger(top_k=2, min_score=0.25, encoder=encoder).tag_logits(logits)
    assert [label for label, _ in tags[0]] == [names[7], names[3]]
    np.testing.assert_allclose([s for _, s in tags[0]], [0.5, 0.3], rtol=1e-6)
    tags = V.ImageNetTagger(top_k=3, min_score=0.4, encoder=encoder).tag_logits(np.repeat(logits, 2, 0))
    assert tags == [[(names[7], pytest.approx(0.5))]] * 2
    assert V.detections_from_tags(tags) == [{"label": names[7], "frame": 0, "score": 0.5},
                                            {"label": names[7], "frame": 1, "score": 0.5}]
    assert V.object_set(tags) == frozenset({names[7]})


def test_photo_clips_tagged(processed):
    names = V.imagenet_class_names()
    cat, coffee = processed["chelsea"], processed["coffee"]
    assert cat.frame_features.shape == (2, 1280) and abs(np.linalg.norm(cat.feature) - 1) < 1e-5
    assert cat.objects & {names[c] for c in CAT_CLASSES}
    assert coffee.objects & {names[c] for c in COFFEE_CLASSES}
    for vf, classes in ((cat, CAT_CLASSES), (coffee, COFFEE_CLASSES)):
        assert all(frame[0][0] in {names[c] for c in classes} for frame in vf.tags)  # top-1 of every frame


def test_detector_taggers_fail_clearly(tmp_path):
    with pytest.raises(ValueError, match="unknown tagger"):
        V.get_tagger("yolo")
    with pytest.raises(ValueError, match="weights file"):
        V.get_tagger("ultralytics:")
    for kind in ("ultralytics", "torchvision"):
        with pytest.raises(FileNotFoundError, match="missing.pt"):
            V.get_tagger(f"{kind}:{tmp_path / 'missing.pt'}")
    weights = tmp_path / "fasterrcnn_resnet50_fpn_coco-0000.pth"
    weights.write_bytes(b"not a checkpoint")
    try:
        import ultralytics  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="ultralytics"):
            V.get_tagger(f"ultralytics:{weights}")
    try:
        import torchvision  # noqa: F401
    except Exception:
        with pytest.raises(ImportError, match="torchvision"):
            V.get_tagger(f"torchvision:{weights}")


def test_read_labels_csv(tmp_path):
    p = tmp_path / "labels.csv"
    p.write_text("video,labels\nchelsea.mp4,1 2\ncoffee,3;4|5\nastronaut.avi,\n")
    assert V.read_labels_csv(p) == {"chelsea.mp4": [1, 2], "coffee": [3, 4, 5], "astronaut.avi": []}
    p.write_text("name,labels\nx,1\n")
    with pytest.raises(ValueError, match="video column"):
        V.read_labels_csv(p)


# ------------------------------------------------------------------------------------ ingest
def _read_records(path: Path, sequence: bool) -> list:
    """Parse our TFRecords with protobuf directly (independent of read_tfrecords)."""
    from vidsage_core.data import iter_tfrecord
    from vidsage_core.data.tfrecord import tensorflow

    tf = tensorflow()
    cls = tf.train.SequenceExample if sequence else tf.train.Example
    return [cls.FromString(rec) for rec in iter_tfrecord(path)]


def test_ingest_end_to_end(tmp_path, photo_clips, processed):
    from vidsage_core.data import dequantize
    from vidsage_core.objects import DetectionsFile, get_object_source

    videos = tmp_path / "videos"
    (videos / "sub").mkdir(parents=True)
    for name, clip in photo_clips.items():
        (videos / ("sub" if name == "astronaut" else "") / clip.name).write_bytes(clip.read_bytes())
    good = photo_clips["chelsea"].read_bytes()
    (videos / "broken.mp4").write_bytes(good[: len(good) // 2])
    (videos / "garbage.webm").write_bytes(b"\x00" * 1000)
    (videos / "notes.txt").write_text("not a video")
    labels = tmp_path / "labels.csv"
    labels.write_text("video,labels\nchelsea.mp4,1 2\ncoffee,3\nmissing.mp4,4\n")
    out = tmp_path / "out"
    rc = cli_main(["ingest", str(videos), "--out", str(out), "--rate", "1", "--max-frames", "2",
                   "--device", "cpu", "--labels", str(labels), "--no-progress"])
    assert rc == 0
    report = json.loads((out / "ingest_report.json").read_text())
    s = report["summary"]
    assert (s["files"], s["ingested"], s["skipped"], s["frames"]) == (5, 3, 2, 6)
    assert sorted(Path(e["file"]).name for e in report["errors"]) == ["broken.mp4", "garbage.webm"]
    assert all(e["error"] == "VideoDecodeError" and e["reason"] for e in report["errors"])
    by_id = {v["video_id"]: v for v in report["videos"]}
    assert sorted(by_id) == ["astronaut", "chelsea", "coffee"]
    assert by_id["chelsea"]["labels"] == [1, 2] and by_id["coffee"]["labels"] == [3]
    assert by_id["astronaut"]["has_audio_stream"] and not by_id["chelsea"]["has_audio_stream"]
    assert report["labels_unmatched"] == ["missing.mp4"]

    # detections.json in the layout objects.DetectionsFile reads, and the "imagenet-tagger" source
    ids = SimpleNamespace(ids=np.array(["chelsea", "coffee", "astronaut"]))
    sets = DetectionsFile(out / "detections.json").object_sets(ids)
    names = V.imagenet_class_names()
    assert sets[0] & {names[c] for c in CAT_CLASSES} and sets[1] & {names[c] for c in COFFEE_CLASSES}
    assert get_object_source(f"imagenet-tagger:{out}").object_sets(ids) == sets
    src = SimpleNamespace(ids=ids.ids, source=f"yt8m video-level TFRecords: {out}/video_level/*.tfrecord")
    assert get_object_source("imagenet-tagger").object_sets(src) == sets

    # video level: mean_rgb is f_v (1280-d, unit norm), mean_audio 128 zeros, labels kept
    expected = {vid: processed[vid].feature for vid in by_id}
    recs = _read_records(out / "video_level" / "ingest0000.tfrecord", sequence=False)
    assert len(recs) == 3
    for ex in recs:
        feats = ex.features.feature
        vid = feats["id"].bytes_list.value[0].decode()
        rgb = np.array(feats["mean_rgb"].float_list.value, np.float32)
        audio = np.array(feats["mean_audio"].float_list.value, np.float32)
        np.testing.assert_allclose(rgb, expected[vid], atol=1e-6)
        assert audio.shape == (128,) and not audio.any()
    # frame level: 2 frames x 1280 bytes; dequantised / FRAME_FEATURE_SCALE, mean, L2 -> f_v
    recs = _read_records(out / "frame_level" / "ingest0000.tfrecord", sequence=True)
    for ex in recs:
        vid = ex.context.feature["id"].bytes_list.value[0].decode()
        lists = ex.feature_lists.feature_list

        def frames(name):
            return np.stack([np.frombuffer(f.bytes_list.value[0], np.uint8) for f in lists[name].feature])

        q = frames("rgb")
        assert q.shape == (2, 1280) and frames("audio").shape == (2, 128)
        f = V.video_level_feature(dequantize(q) / V.FRAME_FEATURE_SCALE)
        assert float(f @ expected[vid]) > 0.999

    # A second ingest into the same directory must not mix shards silently.
    with pytest.raises(FileExistsError, match="overwrite"):
        V.ingest(videos, out, V.IngestConfig(device="cpu"), progress=False)


def test_ingest_round_trip_through_read_tfrecords(tmp_path, photo_clips):
    import inspect

    from vidsage_core.data import read_tfrecords

    if "rgb_dim" not in inspect.signature(read_tfrecords).parameters:
        pytest.skip("data.read_tfrecords reads 1024-d rgb only; 1280-d ingested records need rgb_dim=1280")
    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "chelsea.mp4").write_bytes(photo_clips["chelsea"].read_bytes())
    out = tmp_path / "out"
    res = V.ingest(videos, out, V.IngestConfig(rate=1, max_frames=2, device="cpu"), progress=False)
    vs = read_tfrecords(out / "video_level", level="video", rgb_dim=V.FEATURE_DIM, progress=False)
    fs = read_tfrecords(out / "frame_level", level="frame", rgb_dim=V.FEATURE_DIM, progress=False)
    assert list(vs.ids) == list(fs.ids) == ["chelsea"] and vs.rgb.shape == (1, 1280)
    f_v = vs.features("rgb")[0]
    np.testing.assert_allclose(np.linalg.norm(vs.rgb[0]), 1.0, rtol=1e-6)
    assert float(fs.features("rgb")[0] @ f_v) > 0.999
    np.testing.assert_allclose(vs.features("rgb+audio")[0, :1280], f_v, atol=1e-7)  # zero audio
    assert res.videos[0]["frames"] == 2


# ------------------------------------------------------------------------------------ similar
@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, processed):
    """A trained VidSage run over 18 *synthetic* videos: 3 clusters of 6 around the three photo
    clips' features (noise added), each cluster carrying its clip's ImageNet objects and label."""
    import scipy.sparse as sp
    import torch

    from vidsage_core.graph import vidsage_graph
    from vidsage_core.embed import embed
    from vidsage_core.train import TrainConfig, train
    from vidsage_core.utils import save_json

    rng = np.random.default_rng(0)
    xs, objs, labels, ids = [], [], [], []
    for c, name in enumerate(["chelsea", "coffee", "astronaut"]):
        vf = processed[name]
        for j in range(6):
            x = vf.feature + 0.3 * rng.standard_normal(1280).astype(np.float32) / np.sqrt(1280)
            xs.append(x / np.linalg.norm(x))
            objs.append(vf.objects)
            labels.append(c)
            ids.append(f"synthetic-{name}-{j}")
    x = np.stack(xs).astype(np.float32)
    graph = vidsage_graph(x, objs, k=5, tau=0.0, object_source="synthetic", device="cpu",
                          max_object_frequency=None)
    run = tmp_path_factory.mktemp("run")
    vdir = run / "vidsage"
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(x, graph, TrainConfig(hidden_dim=16, out_dim=16, epochs=1, batch_size=18, device="cpu",
                                             num_negatives=2), vdir, progress=False)
        z = embed(result.model, x, graph, device="cpu")
    finally:
        torch.set_num_threads(threads)
    np.save(vdir / "features.npy", x)
    np.save(vdir / "ids.npy", np.array(ids))
    np.save(vdir / "embeddings.npy", z)
    graph.save(vdir / "graph.pt")
    sp.save_npz(vdir / "labels.npz", sp.csr_matrix((np.ones(18), (np.arange(18), labels)), shape=(18, 3)))
    save_json([sorted(o) for o in objs], vdir / "objects.json")
    save_json({"synthetic": True}, run / "config.json")
    return run


def test_similar_places_new_clip_in_its_cluster(tiny_run, photo_clips, processed, capsys):
    art = V.load_run_artifacts(tiny_run, "vidsage")
    assert art.features.shape == (18, 1280) and len(art.object_sets) == 18
    embedder = art.embedder("cpu")
    for c, name in enumerate(["chelsea", "coffee"]):
        out = V.embed_new_video(processed[name], embedder)
        assert out["edges"] > 0 and out["embedding"].shape == (16,)
        hits = V.nearest_videos(out["embedding"], art, k=3)
        assert [h["labels"] for h in hits] == [[c]] * 3
    rc = cli_main(["similar", str(photo_clips["chelsea"]), "--run", str(tiny_run), "--k", "2", "--device", "cpu"])
    printed = capsys.readouterr().out
    assert rc == 0 and "synthetic-chelsea-" in printed and "Egyptian cat" in printed
    with pytest.raises(FileNotFoundError, match="lite"):
        V.load_run_artifacts(tiny_run, "lite")


def test_latency_breakdown(tiny_run, photo_clips):
    res = V.latency_breakdown(photo_clips["chelsea"], tiny_run, rate=1.0, device="cpu", repeats=1, warmup=0)
    assert res["device"] == "cpu" and res["frames"] == 2 and res["gnn_timed"] == ["vidsage"]
    for stage in ("decode", "features", "objects", "attach_vidsage", "gnn_vidsage"):
        assert res[f"{stage}_s"] > 0
    assert res["total_vidsage_s"] == pytest.approx(sum(res[f"{s}_s"] for s in
                                                       ("decode", "features", "objects", "attach_vidsage",
                                                        "gnn_vidsage")))
    assert res["total_lite_s"] == pytest.approx(res["decode_s"] + res["features_s"])
