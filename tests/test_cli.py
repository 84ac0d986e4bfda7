"""The ``vidsage`` command as a new user meets it: unlabelled data end to end, ``similar --id``,
and expected errors as one line on stderr (no traceback) with a non-zero exit code."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from vidsage_core import paths
from vidsage_core.cli import main
from vidsage_core.data import make_synthetic
from vidsage_core.data.writer import write_video_level_tfrecord

TINY = ["--epochs", "1", "--seeds", "1", "--device", "cpu", "--objects", "proxy-subspace?num_codewords=8"]


def _vidsage(*args, timeout=600):
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    return subprocess.run([sys.executable, "-m", "vidsage_core", *map(str, args)], cwd=paths.ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def unlabelled(tmp_path_factory):
    """140 videos in two TFRecord shards with NO labels, as `vidsage ingest` or a crawl gives."""
    root = tmp_path_factory.mktemp("unlabelled")
    v = make_synthetic(140, num_classes=10, num_topics=4, seed=11)
    data = root / "tfrecords"
    data.mkdir()
    write_video_level_tfrecord(data / "a.tfrecord", v.ids[:70], v.rgb[:70], v.audio[:70], [[]] * 70)
    write_video_level_tfrecord(data / "b.tfrecord", v.ids[70:], v.rgb[70:], v.audio[70:], [[]] * 70)
    out = root / "run"
    proc = _vidsage("run", "--data", data, "--out", out, *TINY)
    return data, out, list(v.ids), proc


def test_run_on_unlabelled_tfrecords_gives_embeddings_of_every_video(unlabelled):
    _, out, ids, proc = unlabelled
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr
    notice = [ln for ln in proc.stdout.splitlines() if "no labels to evaluate" in ln]
    assert len(notice) == 1 and "heads and retrieval scores skipped" in notice[0]
    for variant in ("lite", "vidsage"):
        with np.load(out / variant / "seed0" / "embeddings.npz", allow_pickle=False) as f:
            assert sorted(f.files) == ["ids", "z"]
            assert f["ids"].dtype.kind == "U"
            assert f["ids"].tolist() == ids  # one for one, in input order (train+val and test)
            assert f["z"].dtype == np.float32 and f["z"].shape[0] == len(ids)
            assert np.isfinite(f["z"]).all() and (np.linalg.norm(f["z"], axis=1) > 0).all()
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["rows"] == [] and metrics["provenance"]["evaluated"] is False
    assert metrics["provenance"]["labelled"] == {"trainval": 0, "test": 0, "videos": 0}


def test_similar_by_id_lists_the_brute_force_nearest_videos(unlabelled):
    _, out, ids, _ = unlabelled
    with np.load(out / "vidsage" / "seed0" / "embeddings.npz") as f:
        got_ids, z = f["ids"], f["z"]
    query = 5
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    sims = zn @ zn[query]
    sims[query] = -np.inf  # the video itself is not its own neighbour
    expected = [str(got_ids[j]) for j in np.argsort(-sims, kind="stable")[:4]]
    proc = _vidsage("similar", "--run", out, "--id", ids[query], "-k", 4)
    assert proc.returncode == 0, proc.stderr
    listed = [ln.split()[2] for ln in proc.stdout.splitlines()[1:]]
    assert listed == expected


def test_similar_embeds_new_tfrecord_videos(unlabelled, tmp_path):
    _, out, _, _ = unlabelled
    v = make_synthetic(2, num_classes=10, seed=12)
    new = tmp_path / "new.tfrecord"
    write_video_level_tfrecord(new, ["new-a", "new-b"], v.rgb, v.audio, [[], []])
    proc = _vidsage("similar", "--run", out, new, "-k", 3, "--device", "cpu")
    assert proc.returncode == 0, proc.stderr
    heads = [ln for ln in proc.stdout.splitlines() if ln.startswith("new-")]
    assert [h.split(":")[0] for h in heads] == ["new-a", "new-b"]
    assert len([ln for ln in proc.stdout.splitlines() if ln.startswith("  ")]) == 6


def test_partly_labelled_data_are_scored_on_the_labelled_videos_only(tmp_path, capsys):
    import scipy.sparse as sp

    from vidsage_core import pipeline

    v = make_synthetic(240, num_classes=12, num_topics=4, seed=2)
    keep = np.arange(240) % 3 != 0  # every third video has no labels
    v.labels = sp.csr_matrix(v.labels.multiply(keep[:, None]).astype(np.float32))
    config = pipeline.RunConfig(out=str(tmp_path / "run"), seeds=(0,), variants=("lite",), device="cpu",
                                concat_raw=False, train_overrides={"epochs": 1, "hidden_dim": 16, "out_dim": 16},
                                head_overrides={"epochs": 1})
    metrics = pipeline.run(config, videos=v, progress=False)
    view = pipeline.load_run(config.out)
    lab = np.asarray((v.labels > 0).sum(axis=1)).ravel() > 0
    counts = metrics["provenance"]["labelled"]
    assert counts == {"trainval": int(lab[view.trainval].sum()), "test": int(lab[view.test].sum()),
                      "videos": int(lab.sum())}
    assert f"{int(lab.sum())} of 240 videos are labelled" in capsys.readouterr().out
    assert {r["method"] for r in metrics["rows"]} == {"raw-logistic", "sgc-logistic", "sign-logistic",
                                                      "labelprop", "cs-logistic", "litevidsage-logistic"}
    for r in metrics["rows"]:  # retrieval scores belong to the representations, not to LP / C&S
        if r["variant"] in pipeline.RETRIEVAL_VARIANTS:
            assert 0 <= r["retrieval_precision_at_10"] <= 1 and 0 <= r["retrieval_map_at_100"] <= 1
    # the raw row's retrieval score is the labelled test videos querying the labelled train+val ones
    from vidsage_core.retrieval import label_retrieval

    tv, te = view.trainval[lab[view.trainval]], view.test[lab[view.test]]
    ref = label_retrieval(view.x[te], v.labels[te], view.x[tv], v.labels[tv])
    raw = next(r for r in metrics["rows"] if r["variant"] == "raw")
    assert raw["retrieval_map_at_100"] == pytest.approx(ref["retrieval_map_at_100"])
    ids = np.load(tmp_path / "run" / "lite" / "seed0" / "embeddings.npz")["ids"]
    assert ids.tolist() == list(v.ids)  # unlabelled videos are embedded too


# ------------------------------------------------------------------------------- polite errors
@pytest.fixture(scope="module")
def bad_inputs(tmp_path_factory, unlabelled):
    import torch

    from vidsage_core.graph import lite_graph

    root = tmp_path_factory.mktemp("bad")
    (root / "empty").mkdir()
    (root / "corrupt.tfrecord").write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00garbage-not-a-record")
    x = np.random.default_rng(0).standard_normal((30, 8)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    lite_graph(x, k=3, device="cpu").save(root / "g.pt")
    np.save(root / "x.npy", x)
    np.save(root / "x_wrong.npy", x[:20])
    (root / "x_corrupt.npy").write_text("not numpy")
    v = make_synthetic(2, num_classes=10, seed=3, rgb_dim=100)
    write_video_level_tfrecord(root / "narrow.tfrecord", ["n1", "n2"], v.rgb, v.audio, [[], []])
    torch.save({"not": "used"}, root / "unused.pt")
    return root, unlabelled[1]


CASES = {
    "inspect-missing": (["inspect", "{root}/nope"], "nope"),
    "inspect-empty": (["inspect", "{root}/empty"], "empty"),
    "inspect-corrupt": (["inspect", "{root}/corrupt.tfrecord", "--on-error", "raise"], "corrupt.tfrecord"),
    "run-missing": (["run", "--data", "{root}/nope", "--out", "{root}/o"], "nope"),
    "run-empty": (["run", "--data", "{root}/empty", "--out", "{root}/o"], "empty"),
    "run-corrupt": (["run", "--data", "{root}/corrupt.tfrecord", "--on-error", "raise", "--out", "{root}/o"],
                    "corrupt.tfrecord"),
    "run-unknown-object-source": (["run", "--data", "{root}/empty", "--objects", "bogus", "--out", "{root}/o"],
                                  "--objects bogus"),
    "run-unknown-variant": (["run", "--variant", "bogus"], "--variant"),
    "train-missing-features": (["train", "--features", "{root}/nope.npy", "--graph", "{root}/g.pt",
                                "--out", "{root}/t"], "nope.npy"),
    "train-corrupt-features": (["train", "--features", "{root}/x_corrupt.npy", "--graph", "{root}/g.pt",
                                "--out", "{root}/t"], "x_corrupt.npy"),
    "train-wrong-dimensions": (["train", "--features", "{root}/x_wrong.npy", "--graph", "{root}/g.pt",
                                "--out", "{root}/t"], "x_wrong.npy"),
    "train-not-a-graph": (["train", "--features", "{root}/x.npy", "--graph", "{root}/unused.pt",
                           "--out", "{root}/t"], "unused.pt"),
    "similar-missing-run": (["similar", "--run", "{root}/nope", "--id", "x"], "nope"),
    "similar-unknown-variant": (["similar", "--run", "{run}", "--id", "x", "--variant", "bogus"], "bogus"),
    "similar-unknown-id": (["similar", "--run", "{run}", "--id", "no-such-video"], "no-such-video"),
    "similar-nothing-to-search": (["similar", "--run", "{run}"], "--id"),
    "similar-wrong-dimensions": (["similar", "--run", "{run}", "{root}/narrow.tfrecord", "--device", "cpu"],
                                 "narrow.tfrecord"),
    "ingest-missing": (["ingest", "{root}/nope", "--out", "{root}/i"], "nope"),
    "ingest-empty": (["ingest", "{root}/empty", "--out", "{root}/i"], "empty"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_expected_errors_are_one_line_naming_the_culprit(bad_inputs, case, capsys):
    root, run = bad_inputs
    argv, named = CASES[case]
    argv = [a.format(root=root, run=run) for a in argv]
    try:
        code = main(argv)
    except SystemExit as e:  # argparse usage errors exit from inside parse_args
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code not in (0, None), err
    assert len(lines) == 1, err
    assert named in lines[0] and "error" in lines[0]
    assert "Traceback" not in err


def test_asking_for_cuda_without_a_gpu_is_one_line(bad_inputs, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    root, _ = bad_inputs
    assert main(["run", "--data", f"{root}/empty", "--device", "cuda", "--out", f"{root}/o"]) == 1
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "--device cuda: CUDA is not available" in lines[0]


def test_debug_shows_the_traceback(bad_inputs):
    root, _ = bad_inputs
    with pytest.raises(FileNotFoundError, match="nope"):
        main(["--debug", "run", "--data", f"{root}/nope", "--out", f"{root}/o"])
    with pytest.raises(FileNotFoundError, match="nope"):
        main(["run", "--debug", "--data", f"{root}/nope", "--out", f"{root}/o"])


def test_ctrl_c_during_training_is_one_line_and_exit_130(bad_inputs, tmp_path):
    root, _ = bad_inputs
    out = tmp_path / "t"
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vidsage_core", "train", "--features", root / "x.npy",
                             "--graph", root / "g.pt", "--out", out, "--epochs", "100000", "--batch-size", "4",
                             "--checkpoint-every", "1", "--no-progress", "--device", "cpu"],
                            cwd=paths.ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300  # a hang fails the test instead of blocking the suite
        while not (out / "history.json").exists():  # written at the first checkpoint: training runs
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = [ln for ln in err.strip().splitlines() if "Warning" not in ln and "warnings.warn" not in ln]
    assert proc.returncode == 130, err
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("interrupted after step ")
    assert f"checkpoint in {out / 'checkpoint.pt'}; continue with --resume" in lines[0]
    step = int(lines[0].split()[3].rstrip(";"))
    import torch

    assert torch.load(out / "checkpoint.pt", weights_only=True)["step"] == step


def test_interrupted_run_continues_with_resume(unlabelled, tmp_path):
    data = unlabelled[0]
    # Long enough that the signal lands inside training even on a loaded machine: one step on
    # 101 nodes takes milliseconds, and the trainer starts ~0.5 s after config.json appears.
    EPOCHS = 3000
    out = tmp_path / "run"
    args = ["run", "--data", data, "--out", out, "--epochs", str(EPOCHS), "--seeds", "1", "--variant", "lite",
            "--no-baselines", "--device", "cpu"]
    env = {**os.environ, "PYTHONPATH": str(paths.ROOT)}
    proc = subprocess.Popen([sys.executable, "-m", "vidsage_core", *map(str, args)], cwd=paths.ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        while not (out / "lite" / "seed0" / "config.json").exists():  # train() has started
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        time.sleep(0.5)  # past the signal handler's installation
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("interrupted after step ") and line.endswith("continue with --resume")
    stopped = int(line.split()[3].rstrip(";"))
    assert 0 < stopped < EPOCHS  # one step per epoch (101 nodes < one batch)
    again = _vidsage(*args, "--resume")
    assert again.returncode == 0, again.stderr
    assert "starting from scratch" not in again.stderr
    history = json.loads((out / "lite" / "seed0" / "history.json").read_text())
    assert [h["step"] for h in history] == list(range(1, EPOCHS + 1))  # continued, not restarted
    with np.load(out / "lite" / "seed0" / "embeddings.npz") as f:
        assert f["ids"].tolist() == unlabelled[2]
