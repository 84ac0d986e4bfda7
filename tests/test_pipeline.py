"""vidsage run end to end on small synthetic data (labelled synthetic), and its pieces."""

import dataclasses
import json

import numpy as np
import pytest

from vidsage_core import paths, pipeline
from vidsage_core.data import make_synthetic, write_synthetic_frame_level
from vidsage_core.precision import resolve_precision
from vidsage_core.utils import load_json

TINY_TRAIN = {"epochs": 1, "hidden_dim": 32, "out_dim": 32, "batch_size": 64}
TINY_HEAD = {"epochs": 2}


@pytest.fixture(scope="module")
def synthetic_run(tmp_path_factory):
    videos = make_synthetic(400, num_classes=40, num_topics=8, num_objects=60, seed=3)
    out = tmp_path_factory.mktemp("run")
    config = pipeline.RunConfig(out=str(out), dataset="synthetic-test", seeds=(0, 1),
                                objects="videoset", heads=("logistic", "moe"), device="cpu",
                                train_overrides=TINY_TRAIN, head_overrides=TINY_HEAD)
    return config, videos, pipeline.run(config, videos=videos, progress=False)


def test_run_writes_every_row_with_provenance(synthetic_run):
    config, videos, metrics = synthetic_run
    methods = {(r["method"], r["seed"]) for r in metrics["rows"]}
    prov = metrics["provenance"]
    expected = {(m, s) for s in (0, 1) for m in
                ("raw-logistic", "raw-moe", "sgc-logistic", "sign-logistic", "labelprop",
                 "cs-logistic", "cs-moe", "litevidsage-logistic",
                 "vidsage-logistic", "litevidsage+raw-logistic", "vidsage+raw-logistic")}
    assert methods == expected
    for r in metrics["rows"]:  # the default protocol: probe rows and baselines, all labels
        gnn = r["variant"] in ("lite", "vidsage", "lite+raw", "vidsage+raw")
        assert r["protocol"] == ("probe" if gnn else "none")
        assert r["label_fraction"] == 1.0
        assert r["num_labelled"] == prov["split"]["train"] + prov["split"]["val"]
        assert r["init"] == ("unsupervised" if gnn else None)
    prov = metrics["provenance"]
    assert prov["synthetic"] is True and prov["num_videos"] == 400
    assert sum(prov["split"].values()) == 400
    assert prov["seeds"] == [0, 1]
    for r in metrics["rows"]:
        assert 0.0 <= r["gap"] <= 1.0 and 0.0 <= r["hit_at_one"] <= 1.0
        if r["variant"].startswith("vidsage"):
            assert r["object_source"] == "videoset-objects"
    on_disk = json.loads((pipeline.Path(config.out) / "metrics.json").read_text())
    assert on_disk["rows"] == json.loads(json.dumps(metrics["rows"]))
    for variant in ("lite", "vidsage"):
        for seed in (0, 1):
            d = pipeline.Path(config.out) / variant / f"seed{seed}"
            assert (d / "model.pt").exists() and (d / "history.json").exists()


def test_raw_heads_learn_something_on_topic_driven_labels(synthetic_run):
    _, _, metrics = synthetic_run
    raw = [r for r in metrics["rows"] if r["method"] == "raw-logistic"]
    # 40 Zipf classes, 3 labels per video: a random ranking's hit@1 is about 3/40.
    assert np.mean([r["hit_at_one"] for r in raw]) > 0.2


def test_test_videos_are_never_in_the_training_graph(synthetic_run):
    config, _, _ = synthetic_run
    view = pipeline.load_run(config.out)
    assert len(np.intersect1d(view.trainval, view.test)) == 0
    assert view.graph("lite").num_nodes == len(view.trainval)
    assert view.embeddings("lite", 0, "test").shape[0] == len(view.test)


def test_saved_config_names_paths_relative_to_the_repository():
    config = pipeline.RunConfig(out=str(paths.RUNS / "x"), data="/elsewhere/mine/*.tfrecord")
    saved = pipeline.saved_config(config)
    assert saved["out"] == "results/runs/x" and saved["data"] == "/elsewhere/mine/*.tfrecord"
    assert pipeline.saved_config(pipeline.RunConfig())["data"] == "data/yt8m/video_level_2018/*.tfrecord"


def test_run_if_missing_reuses_a_complete_run(synthetic_run, capsys):
    config, videos, metrics = synthetic_run
    again = pipeline.run_if_missing(config, videos=videos, progress=False)
    assert again["rows"] == json.loads(json.dumps(metrics["rows"]))
    assert "not re-run" in capsys.readouterr().out


def test_run_if_missing_reruns_a_clone_that_has_only_the_json(synthetic_run, tmp_path, monkeypatch, capsys):
    # A fresh clone has the run's JSON provenance (kept in git) but not its models and
    # embeddings (ignored); the tables and figures need those, so the run is done again.
    import dataclasses
    import shutil

    config, videos, _ = synthetic_run
    clone = tmp_path / "clone"
    shutil.copytree(config.out, clone, ignore=shutil.ignore_patterns("*.pt", "*.npz", "*.npy", "*.pkl"))
    cloned = dataclasses.replace(config, out=str(clone))
    (clone / "config.json").write_text(json.dumps(pipeline.saved_config(cloned)))
    calls = []
    monkeypatch.setattr(pipeline, "run", lambda c, **kw: calls.append(c) or {"rows": []})
    pipeline.run_if_missing(cloned, videos=videos, progress=False)
    assert calls == [cloned]
    assert "running it again" in capsys.readouterr().out


def test_frame_level_baselines_run_on_frame_level_tfrecords(tmp_path):
    path = write_synthetic_frame_level(tmp_path / "frames.tfrecord", 60, (5, 12), seed=1,
                                       num_classes=10, num_topics=3)
    config = pipeline.RunConfig(data=str(path), out=str(tmp_path / "run"), level="frame",
                                variants=(), baselines=False, seeds=(0,), device="cpu",
                                frame_heads=("logistic_average", "moe_mu_sigma_top5"),
                                head_overrides=TINY_HEAD)
    metrics = pipeline.run(config, progress=False)
    assert {r["method"] for r in metrics["rows"]} == {"frame-logistic_average",
                                                      "frame-moe_mu_sigma_top5"}
    assert metrics["provenance"]["synthetic"] is False  # a file: the reader cannot know


def test_run_refuses_too_few_videos(tmp_path):
    videos = make_synthetic(5, num_classes=4, seed=0)
    with pytest.raises(ValueError, match="only 5 readable videos"):
        pipeline.run(pipeline.RunConfig(out=str(tmp_path)), videos=videos, progress=False)


def test_table2_shows_the_concatenated_rows_beside_the_paper_rows(synthetic_run):
    from vidsage_core import tables

    config, _, _ = synthetic_run
    df, caption = tables.table2(config.out)
    concat = df[df["method"].str.contains("⊕ raw")]
    assert len(concat) == 2 and concat["note"].str.contains("beyond the paper").all()
    assert (concat["n seeds"] == 2).all()
    assert "synthetic" in caption.lower()


def test_prepare_only_writes_the_inputs_of_distributed_training(tmp_path):
    from vidsage_core import train

    videos = make_synthetic(120, num_classes=12, num_topics=4, seed=2)
    out = tmp_path / "prep"
    config = pipeline.RunConfig(out=str(out), variants=("lite",), prepare_only=True, device="cpu")
    assert pipeline.run(config, videos=videos, progress=False)["rows"] == []
    x = np.load(out / "features_trainval.npy")
    assert x.shape == (len(pipeline.load_run(out).trainval), 1152)
    code = train.main(["--features", str(out / "features_trainval.npy"),
                       "--graph", str(out / "lite" / "graph.pt"), "--out", str(tmp_path / "t"),
                       "--epochs", "1", "--hidden-dim", "16", "--out-dim", "16",
                       "--batch-size", "32", "--device", "cpu", "--no-progress"])
    assert code == 0 and (tmp_path / "t" / "model.pt").exists()


def test_run_takes_feature_sizes_from_the_data(tmp_path):
    # `vidsage ingest` writes 1280-d EfficientNet rgb: the pipeline must not assume 1024.
    from vidsage_core.data import write_video_level_tfrecord

    base = make_synthetic(80, num_classes=6, num_topics=3, seed=4)
    rgb = np.concatenate([base.rgb, base.rgb[:, :256]], 1)
    labels = [list(base.labels[i].indices) for i in range(len(base))]
    path = write_video_level_tfrecord(tmp_path / "ingested.tfrecord", list(base.ids), rgb,
                                      base.audio, labels)
    videos = pipeline.load_videos(str(path), progress=False)
    assert videos.rgb.shape == (80, 1280) and videos.audio.shape == (80, 128)


def test_knn_mode_builds_the_graph_with_that_search(tmp_path):
    # `vidsage run --knn-mode ivf-gemm`: the approximate search for millions of videos reaches the
    # graph (recorded in its meta, which the inductive attachment reads) and agrees with exact
    # search on most edges of this small clustered set.
    import argparse

    from vidsage_core.graph import VideoGraph

    parser = argparse.ArgumentParser()
    pipeline.add_run_arguments(parser)
    assert parser.parse_args(["--knn-mode", "ivf-gemm"]).knn_mode == "ivf-gemm"
    assert parser.parse_args([]).knn_mode == "exact"

    videos = make_synthetic(300, num_classes=12, num_topics=4, seed=5)
    graphs = {}
    for mode in ("exact", "ivf-gemm"):
        out = tmp_path / mode
        config = pipeline.RunConfig(out=str(out), variants=("lite",), prepare_only=True, device="cpu",
                                    knn_mode=mode)
        pipeline.run(config, videos=videos, progress=False)
        graphs[mode] = VideoGraph.load(out / "lite" / "graph.pt")
    assert graphs["ivf-gemm"].meta["mode"] == "ivf-gemm"
    edges = {m: set(map(tuple, g.edge_index.T.tolist())) for m, g in graphs.items()}
    assert len(edges["exact"] & edges["ivf-gemm"]) >= 0.8 * len(edges["exact"])


def test_streamed_run_trains_and_embeds_from_the_stores(tmp_path):
    # `vidsage run --stream` on synthetic YouTube-8M-schema TFRecords: sampled training from the
    # memmap store, layer-wise embedding into a float16 .npy equal to embedding the store in RAM.
    import torch

    from vidsage_core.data import write_video_level_tfrecord
    from vidsage_core.embed import embed
    from vidsage_core.graph import VideoGraph
    from vidsage_core.train import load_model

    videos = make_synthetic(300, num_classes=12, num_topics=4, seed=3)
    data = tmp_path / "tfr"
    for s in range(3):
        rows = slice(100 * s, 100 * (s + 1))
        write_video_level_tfrecord(data / f"train{s}.tfrecord", list(videos.ids[rows]), videos.rgb[rows],
                                   videos.audio[rows], [list(videos.labels[i].indices) for i in range(300)][rows])
    out = tmp_path / "run"
    config = pipeline.RunConfig(data=str(data / "*.tfrecord"), out=str(out), variants=("lite",), stream=True,
                                device="cpu", head_sample=50, knn_mode="ivf-gemm", concat_raw=False,
                                train_overrides={"max_steps": 2, "full_graph": False, "hidden_dim": 16,
                                                 "out_dim": 16, "batch_size": 32, "fanouts": (5, 5)})
    metrics = pipeline.run_streamed(config, progress=False)
    assert [r["method"] for r in metrics["rows"]] == ["raw-logistic", "litevidsage-logistic"]
    prov = metrics["provenance"]
    assert prov["split"]["trainval"] + prov["split"]["test"] == 300 and prov["store_dtype"] == "float16"
    assert prov["head_sample"] == {"trainval": 50, "test": 50}
    assert set(prov["stage_seconds"]) == {"read", "graph", "train", "embed", "embed_test", "heads"}
    seed_dir = out / "lite" / "seed0"
    assert len(json.loads((seed_dir / "history.json").read_text())) == 2
    z = np.load(seed_dir / "embeddings_trainval.npy")
    assert z.dtype == np.float16 and z.shape == (prov["split"]["trainval"], 16)
    x_tv = np.load(out / "store" / "trainval" / "features.npy")
    torch.manual_seed(0)
    ref = embed(load_model(seed_dir), x_tv.astype(np.float32), VideoGraph.load(out / "lite" / "graph.pt"))
    np.testing.assert_allclose(z.astype(np.float32), ref, atol=2e-3)  # float16 storage
    assert np.load(seed_dir / "embeddings_test.npy").shape == (prov["split"]["test"], 16)
    with pytest.raises(ValueError, match="--variant lite"):
        pipeline.run_streamed(dataclasses.replace(config, variants=("vidsage",)), progress=False)

def test_label_subsets_are_nested_prefixes_of_one_id_order():
    ids = [f"vid{i:03d}" for i in range(200)]
    order = pipeline.label_order(ids)
    assert sorted(order.tolist()) == list(range(200))
    np.testing.assert_array_equal(order, pipeline.label_order(list(ids)))  # a function of ids
    small, large = pipeline.labelled_subset(order, 0.05), pipeline.labelled_subset(order, 0.25)
    assert len(small) == 10 and len(large) == 50 and set(small) <= set(large)
    assert len(pipeline.labelled_subset(order, 0.001)) == 1  # never empty
    np.testing.assert_array_equal(pipeline.labelled_subset(order, 1.0), np.arange(200))
    with pytest.raises(ValueError, match="label fraction 0"):
        pipeline.labelled_subset(order, 0.0)


TINY_FINETUNE = {"epochs": 1, "batch_size": 64}


def _both_config(out, **fields):
    return pipeline.RunConfig(out=str(out), dataset="synthetic-test", seeds=(0,),
                              objects="videoset", heads=("logistic",), device="cpu",
                              protocol="both", label_fractions=(0.5, 1.0),
                              train_overrides=TINY_TRAIN, head_overrides=TINY_HEAD,
                              finetune_overrides=TINY_FINETUNE, **fields)


@pytest.fixture(scope="module")
def both_run(tmp_path_factory):
    """protocol both, label fractions (0.5, 1.0); records the test scores every row was given."""
    videos = make_synthetic(300, num_classes=30, num_topics=6, num_objects=50, seed=7)
    config = _both_config(tmp_path_factory.mktemp("both"))
    scores = []
    with pytest.MonkeyPatch.context() as mp:
        real = pipeline.all_metrics
        mp.setattr(pipeline, "all_metrics", lambda s, y: scores.append(np.array(s)) or real(s, y))
        metrics = pipeline.run(config, videos=videos, progress=False)
    return config, videos, metrics, scores


def test_protocol_both_writes_probe_finetune_ablation_and_baseline_rows(both_run):
    config, _, metrics, _ = both_run
    rows = metrics["rows"]
    key = {(r["method"], r["protocol"], r["label_fraction"], r["init"], r["preset"]) for r in rows}
    for f in (0.5, 1.0):
        for m in ("raw-logistic", "sgc-logistic", "sign-logistic", "labelprop", "cs-logistic"):
            assert (m, "none", f, None, None) in key
        for v in ("litevidsage", "vidsage"):
            assert (f"{v}-logistic", "probe", f, "unsupervised", None) in key
            assert (f"{v}+raw-logistic", "probe", f, "unsupervised", None) in key
            assert (f"{v}-finetune", "finetune", f, "unsupervised", "default") in key
    for v in ("litevidsage", "vidsage"):  # the ablations: all labels only
        assert (f"{v}-finetune-random-init", "finetune", 1.0, "random", "default") in key
        assert (f"{v}-finetune-paper-exact", "finetune", 1.0, "unsupervised", "paper-exact") in key
        assert (f"{v}-finetune-moe", "finetune", 1.0, "unsupervised", "moe-layer") in key
    assert {r["label_fraction"] for r in rows if "random-init" in r["method"]} == {1.0}
    # The MoE-layer rows carry the head they were fine-tuned with; every other fine-tuning, logistic.
    assert {r["head"] for r in rows if r["protocol"] == "finetune" and r["preset"] == "moe-layer"} == {"moe"}
    assert {r["head"] for r in rows if r["protocol"] == "finetune" and r["preset"] != "moe-layer"} == {"logistic"}
    saved = load_json(pipeline.Path(config.out) / "vidsage" / "seed0" / "finetune-moe-layer" / "config.json")
    assert saved["config"]["classifier"] == "moe"
    prov = metrics["provenance"]
    n = prov["split"]["train"] + prov["split"]["val"]
    assert prov["num_labelled"] == {"0.5": round(n / 2), "1.0": n}
    assert {r["num_labelled"] for r in rows if r["label_fraction"] == 0.5} == {round(n / 2)}
    assert prov["protocol"] == "both" and prov["label_fractions"] == [0.5, 1.0]
    assert {"pretrain", "probe_heads", "finetune", "labelprop"} <= set(prov["stage_seconds"])
    # One unsupervised pre-training per variant and seed, shared by every fraction and protocol.
    for v in ("lite", "vidsage"):
        assert (pipeline.Path(config.out) / v / "seed0" / "model.pt").exists()
        assert (pipeline.Path(config.out) / v / "seed0" / "finetune-f0.5" / "model.pt").exists()
    # The run's precision ("auto": bf16 products where the CPU has them) reaches fine-tuning.
    resolved = resolve_precision(config.precision, "cpu")
    assert prov["precision"] == resolved
    saved = load_json(pipeline.Path(config.out) / "lite" / "seed0" / "finetune-f1" / "config.json")
    assert saved["resolved"]["precision"] == resolved


def test_permuting_the_test_labels_changes_no_prediction(both_run, tmp_path, monkeypatch):
    # Leakage: every row's test scores (baselines, probe, fine-tuning, ablations) are the same
    # when the test videos' labels are shuffled among them; only the metrics may move.
    import dataclasses

    config, videos, metrics, scores = both_run
    test = pipeline.load_run(config.out).test
    perm = np.random.default_rng(0).permutation(len(test))
    labels = videos.labels.tolil()
    labels[test] = videos.labels[test[perm]].tolil()
    shuffled = dataclasses.replace(videos, labels=labels.tocsr())
    again = []
    real = pipeline.all_metrics
    monkeypatch.setattr(pipeline, "all_metrics", lambda s, y: again.append(np.array(s)) or real(s, y))
    rerun = pipeline.run(dataclasses.replace(config, out=str(tmp_path / "shuffled")),
                         videos=shuffled, progress=False)
    assert [r["method"] for r in rerun["rows"]] == [r["method"] for r in metrics["rows"]]
    assert len(again) == len(scores) == len(metrics["rows"])
    for a, b in zip(scores, again):
        np.testing.assert_array_equal(a, b)
    assert any(r["gap"] != q["gap"] for r, q in zip(rerun["rows"], metrics["rows"]))


def test_run_refuses_an_unknown_protocol(tmp_path):
    videos = make_synthetic(40, num_classes=4, seed=0)
    with pytest.raises(ValueError, match="protocol='linear'"):
        pipeline.run(pipeline.RunConfig(out=str(tmp_path), protocol="linear"), videos=videos,
                     progress=False)


@pytest.mark.parametrize("fields, message", [({"finetune_ablations": ("moe",)}, "unknown \\['moe'\\]"),
                                             ({"moe_layer_variants": ("raw",)}, "moe_layer_variants")])
def test_run_refuses_unknown_ablations_and_moe_layer_variants(tmp_path, fields, message):
    videos = make_synthetic(40, num_classes=4, seed=0)
    with pytest.raises(ValueError, match=message):
        pipeline.run(pipeline.RunConfig(out=str(tmp_path), **fields), videos=videos, progress=False)


def test_worker_processes_give_the_rows_of_one_process(both_run, tmp_path):
    # Units run side by side in spawned workers (one torch thread each) must give exactly what
    # the same units give one after the other in this process with one thread: same rows, same
    # order, same numbers (only the timings differ).
    import torch

    config, videos, _, _ = both_run
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        alone = pipeline.run(dataclasses.replace(config, out=str(tmp_path / "one")), videos=videos,
                             progress=False)
    finally:
        torch.set_num_threads(threads)
    side = pipeline.run(dataclasses.replace(config, out=str(tmp_path / "two"), workers=2),
                        videos=videos, progress=False)
    timing = {"fit_seconds", "train_seconds"}
    strip = lambda rows: [{k: v for k, v in r.items() if k not in timing} for r in rows]  # noqa: E731
    assert strip(side["rows"]) == strip(alone["rows"])
    assert side["provenance"]["workers"] == {"processes": 2, "torch_threads": 1}
    for v in ("lite", "vidsage"):  # the workers wrote each variant's model and embeddings
        a = np.load(tmp_path / "one" / v / "seed0" / "embeddings.npz")["z"]
        b = np.load(tmp_path / "two" / v / "seed0" / "embeddings.npz")["z"]
        np.testing.assert_array_equal(a, b)


def test_each_row_fits_its_head_with_its_inputs_schedule():
    config = pipeline.RunConfig()
    raw = pipeline.head_config(config, "raw", "logistic", seed=3, device="cpu")
    assert (raw.lr, raw.epochs, raw.seed) == (6e-2, 3, 3)
    # The z-only probe rows fit with HeadConfig's lr and HEAD_EPOCHS; [x ‖ z] with its own.
    for probe in ("lite", "vidsage"):
        z = pipeline.head_config(config, probe, "logistic", 0, "cpu")
        assert (z.lr, z.epochs) == (3e-2, 8)
    for probe in ("lite+raw", "vidsage+raw"):
        xz = pipeline.head_config(config, probe, "logistic", 0, "cpu")
        assert (xz.lr, xz.epochs) == (3e-2, 5)
    sign = pipeline.head_config(config, "sign", "logistic", 0, "cpu")
    assert (sign.lr, sign.epochs) == (3e-2, 5)
    hinge = pipeline.head_config(config, "raw", "hinge", 0, "cpu")
    assert (hinge.lr, hinge.epochs) == (3e-2, 5)
    # Fewer labels, more passes: 3 epochs x min(1 / 0.01, factor 3) = 9.
    assert pipeline.head_config(config, "raw", "logistic", 0, "cpu", fraction=0.01).epochs == 9
    # The user's overrides win over the schedule.
    mine = dataclasses.replace(config, head_overrides={"epochs": 2})
    assert pipeline.head_config(mine, "raw", "moe", 0, "cpu").epochs == 2
