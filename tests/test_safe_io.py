"""Run directories are safe to share: no file of a run is ever unpickled.

Each test replaces one file of a real (tiny) run by a pickle whose loading would create a marker
file (``__reduce__`` -> ``open(marker, "w")``), then checks that loading is refused with an error
naming the file and that the marker was NOT created, i.e. no code ran.
"""

from __future__ import annotations

import pickle
import subprocess
import sys

import numpy as np
import pytest
import torch

from vidsage_core import paths, pipeline
from vidsage_core.data import make_synthetic
from vidsage_core.safe_io import UnsafeFileError, load_npz, load_tensor_file

TINY_TRAIN = {"epochs": 1, "hidden_dim": 16, "out_dim": 16, "batch_size": 64}


class _Evil:
    """Unpickling this calls open(marker, "w"): proof that code ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    videos = make_synthetic(160, num_classes=10, num_topics=4, num_objects=30, seed=5)
    out = tmp_path_factory.mktemp("shared_run")
    config = pipeline.RunConfig(out=str(out), seeds=(0,), objects="proxy-subspace?num_codewords=8",
                                device="cpu", baselines=False, concat_raw=False,
                                train_overrides=TINY_TRAIN, head_overrides={"epochs": 1})
    pipeline.run(config, videos=videos, progress=False)
    return out


def _poison(path, marker, as_torch: bool) -> None:
    if as_torch:
        torch.save({"model": _Evil(marker), "model_kwargs": {}}, path)
    else:
        path.write_bytes(pickle.dumps(_Evil(marker)))


def test_run_directory_holds_no_pickles(run_dir):
    assert not list(run_dir.rglob("*.pkl"))
    source = run_dir / "vidsage" / "object_source.json"
    assert source.is_file() and (run_dir / "vidsage" / "object_source.npz").is_file()
    for pt in run_dir.rglob("*.pt"):  # every tensor file loads with weights_only=True
        torch.load(pt, map_location="cpu", weights_only=True)
    for npz in run_dir.rglob("*.npz"):
        load_npz(npz)


@pytest.mark.parametrize("as_torch", [True, False], ids=["torch.save", "raw-pickle"])
@pytest.mark.parametrize("name", ["model.pt", "checkpoint.pt"])
def test_a_poisoned_model_or_checkpoint_is_refused_and_runs_no_code(run_dir, tmp_path, name, as_torch):
    import shutil

    from vidsage_core.train import TrainConfig, load_model, train

    seed_dir = tmp_path / "seed0"
    shutil.copytree(run_dir / "lite" / "seed0", seed_dir)
    marker = tmp_path / "code_ran"
    _poison(seed_dir / name, marker, as_torch)
    with pytest.raises(UnsafeFileError, match=f"{name}.*(refused|not a readable)"):
        if name == "model.pt":
            load_model(seed_dir)
        else:
            view = pipeline.load_run(run_dir)
            train(view.x[view.trainval], view.graph("lite"),
                  TrainConfig(**TINY_TRAIN, device="cpu"), seed_dir, resume=True, progress=False)
    assert not marker.exists()


def test_a_poisoned_graph_is_refused_and_runs_no_code(tmp_path):
    from vidsage_core.graph import VideoGraph

    marker = tmp_path / "code_ran"
    _poison(tmp_path / "graph.pt", marker, as_torch=True)
    with pytest.raises(UnsafeFileError, match="graph.pt"):
        VideoGraph.load(tmp_path / "graph.pt")
    assert not marker.exists()


def test_a_poisoned_object_source_is_refused_and_runs_no_code(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    marker = tmp_path / "code_ran"
    _poison(copy / "vidsage" / "object_source.npz", marker, as_torch=False)
    with pytest.raises(UnsafeFileError, match="object_source.npz"):
        pipeline.load_run(copy).object_sets("vidsage")
    assert not marker.exists()
    # an object array inside a real .npz is refused too
    np.savez(copy / "vidsage" / "object_source.npz", codebook_0=np.array([_Evil(marker)], dtype=object))
    with pytest.raises(UnsafeFileError, match="object_source.npz"):
        pipeline.load_run(copy).object_sets("vidsage")
    assert not marker.exists()


def test_cli_refuses_a_poisoned_run_with_one_line(run_dir, tmp_path):
    import shutil

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    marker = tmp_path / "code_ran"
    _poison(copy / "lite" / "seed0" / "model.pt", marker, as_torch=True)
    tfrecord = tmp_path / "new.tfrecord"
    from vidsage_core.data.writer import write_video_level_tfrecord

    v = make_synthetic(3, num_classes=10, seed=9)
    write_video_level_tfrecord(tfrecord, v.ids, v.rgb, v.audio, [[]] * 3)
    proc = subprocess.run([sys.executable, "-m", "vidsage_core", "similar", "--run", str(copy),
                           "--variant", "lite", str(tfrecord), "--device", "cpu"],
                          cwd=paths.ROOT, capture_output=True, text=True)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and len(lines) == 1, proc.stderr
    assert "model.pt" in lines[0] and "refused" in lines[0] and "Traceback" not in proc.stderr
    assert not marker.exists()


def test_load_tensor_file_names_missing_and_foreign_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.pt"):
        load_tensor_file(tmp_path / "nope.pt", "model")
    (tmp_path / "text.pt").write_text("hello")
    with pytest.raises(UnsafeFileError, match="text.pt"):
        load_tensor_file(tmp_path / "text.pt", "model")
