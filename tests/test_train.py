"""Training loop: schedule, exact resume, signals, outputs, embeddings, CLI.

Synthetic data only (labelled so): 8 Gaussian clusters on the unit sphere, a kNN graph over them.
"""

from __future__ import annotations

import argparse
import json
import signal

import numpy as np
import pytest
import torch

from vidsage_core.graph import build_graph, lite_graph
from vidsage_core.model import build_model
from vidsage_core.embed import closure_subgraph, embed, embed_nodes, in_csr
from vidsage_core.store import open_store
from vidsage_core.train import (TrainConfig, add_train_arguments, config_from_args, load_model, lr_factor, main,
                                train)


def synthetic_clusters(n: int = 120, d: int = 16, clusters: int = 6, seed: int = 0):
    """Synthetic: unit vectors around `clusters` random centres, and their 5-NN graph."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(clusters, d))
    x = (centres[rng.integers(0, clusters, n)] + 0.6 * rng.normal(size=(n, d))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, lite_graph(x, k=5, tau=-1.0, device="cpu")


pytestmark = pytest.mark.usefixtures("one_torch_thread")


X, G = synthetic_clusters()
SMALL = dict(hidden_dim=16, out_dim=16, batch_size=32, epochs=2, num_negatives=3, checkpoint_every=1000)


def _equal_state(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


class _Kill(Exception):
    pass


def test_lr_schedule_warmup_then_cosine_to_zero():
    # Hand-worked: warm-up 4 of 12 steps -> 0.25, 0.5, 0.75, 1, then cos over the 8 remaining.
    f = [lr_factor(s, 4, 12) for s in range(13)]
    assert f[:4] == [0.25, 0.5, 0.75, 1.0]
    assert f[4] == 1.0
    assert f[8] == pytest.approx(0.5)  # half-way through the decay
    assert f[12] == pytest.approx(0.0, abs=1e-12)
    assert all(a >= b for a, b in zip(f[3:], f[4:]))


@pytest.mark.parametrize("full_graph", [True, False])
def test_killed_and_resumed_run_is_bit_identical(tmp_path, full_graph):
    cfg = TrainConfig(**SMALL, full_graph=full_graph)  # 4 steps/epoch, 8 steps
    ref = train(X, G, cfg, tmp_path / "ref", progress=False)
    assert len(ref.history) == 8

    def kill_after_5(step, loss, model):  # mid-epoch 1, after crossing the epoch boundary
        if step == 5:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        train(X, G, cfg, tmp_path / "run", progress=False, callback=kill_after_5)
    ckpt = torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)
    assert ckpt["step"] == 5
    res = train(X, G, cfg, tmp_path / "run", resume=True, progress=False)
    assert _equal_state(ref.model, res.model)
    assert [h["loss"] for h in res.history] == [h["loss"] for h in ref.history]
    assert [h["lr"] for h in res.history] == [h["lr"] for h in ref.history]
    saved = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [h["step"] for h in saved] == list(range(1, 9))


def test_sigint_and_sigterm_checkpoint_at_step_boundary_then_reraise(tmp_path):
    cfg = TrainConfig(**SMALL, full_graph=True)
    ref = train(X, G, cfg, tmp_path / "ref", progress=False)
    sigint_before = signal.getsignal(signal.SIGINT)  # SIG_IGN when the suite runs in the background

    def sigint_at_3(step, loss, model):
        if step == 3:
            signal.raise_signal(signal.SIGINT)  # what Ctrl-C delivers

    with pytest.raises(KeyboardInterrupt):
        train(X, G, cfg, tmp_path / "run", progress=False, callback=sigint_at_3)
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 3

    def on_term(signum, frame):
        raise _Kill

    def sigterm_at_6(step, loss, model):
        if step == 6:
            signal.raise_signal(signal.SIGTERM)  # what a scheduler / torchrun sends

    old = signal.signal(signal.SIGTERM, on_term)
    try:
        with pytest.raises(_Kill):  # re-raised to the handler that was installed before train()
            train(X, G, cfg, tmp_path / "run", resume=True, progress=False, callback=sigterm_at_6)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert signal.getsignal(signal.SIGINT) is sigint_before  # handlers restored
    assert torch.load(tmp_path / "run" / "checkpoint.pt", weights_only=True)["step"] == 6
    res = train(X, G, cfg, tmp_path / "run", resume=True, progress=False)
    assert _equal_state(ref.model, res.model)


def test_data_loader_workers_do_not_change_the_run(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 1}, full_graph=False)
    a = train(X, G, cfg, tmp_path / "a", progress=False)
    b = train(X, G, TrainConfig(**{**SMALL, "epochs": 1}, full_graph=False, num_workers=2), tmp_path / "b",
              progress=False)
    assert _equal_state(a.model, b.model)


def test_resume_refuses_a_different_config(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 1, "checkpoint_every": 1})
    train(X, G, cfg, tmp_path, progress=False)
    with pytest.raises(ValueError, match="lr"):
        train(X, G, TrainConfig(**{**SMALL, "epochs": 1}, lr=0.5), tmp_path, resume=True, progress=False)


def test_outputs_and_saved_model(tmp_path):
    cfg = TrainConfig(**{**SMALL, "checkpoint_every": 3})
    res = train(X, G, cfg, tmp_path, progress=False)
    conf = json.loads((tmp_path / "config.json").read_text())
    assert conf["config"]["lr"] == cfg.lr and conf["config"]["fanouts"] == [25, 10]
    r = conf["resolved"]
    assert r["device"] == "cpu" and r["full_graph"] is True and r["sampler_backend"] == "full-graph"
    assert r["torch_version"] == torch.__version__ and r["total_steps"] == 8 and r["num_nodes"] == 120
    hist = json.loads((tmp_path / "history.json").read_text())
    assert [h["step"] for h in hist] == list(range(1, 9))
    assert {"step", "epoch", "loss", "lr"} <= set(hist[0])
    assert [h["epoch"] for h in hist] == [0] * 4 + [1] * 4
    # lr of each step follows the schedule exactly
    assert [h["lr"] for h in hist] == pytest.approx([cfg.lr * lr_factor(s, 10, 8) for s in range(8)])
    model = load_model(tmp_path)
    assert _equal_state(model, res.model)
    z = embed(model, X, G)
    assert z.shape == (120, 16) and z.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-5)


@pytest.mark.parametrize("loss", ["negative_sampling", "triplet", "contrastive"])
def test_loss_falls(tmp_path, loss):
    # Light dropout: with p=0.5 and 32 anchors the per-step triplet loss is too noisy to compare.
    cfg = TrainConfig(**{**SMALL, "epochs": 8}, loss=loss, lr=1e-2, warmup_steps=2, dropout=0.1)
    h = [r["loss"] for r in train(X, G, cfg, tmp_path, progress=False).history]
    first, last = np.mean(h[:4]), np.mean(h[-4:])
    assert last < first * 0.9, (loss, h)


def test_trained_embeddings_keep_graph_neighbours_closer_than_random(tmp_path):
    cfg = TrainConfig(**{**SMALL, "epochs": 6}, lr=1e-2, warmup_steps=2)
    z = embed(train(X, G, cfg, tmp_path, progress=False).model, X, G)
    src, dst = G.edge_index
    neighbour_sim = float((z[src] * z[dst]).sum(1).mean())
    rng = np.random.default_rng(1)
    a, b = rng.integers(0, 120, 2000), rng.integers(0, 120, 2000)
    random_sim = float((z[a] * z[b]).sum(1).mean())
    assert neighbour_sim > random_sim + 0.1


def test_closure_subgraph_on_a_path():
    # Path 0-1-2-3-4-5; target 0 with L=2: nodes within 2 hops {0,1,2}, their in-edges bring 3.
    g = build_graph(np.array([0, 1, 2, 3, 4]), np.array([1, 2, 3, 4, 5]), 1.0, 6)
    ptr, src, w, _ = in_csr(g.edge_index, g.edge_weight, 6)
    n_id, ei, ew = closure_subgraph(ptr, src, w, torch.tensor([0]), 2, 6)
    assert n_id.tolist() == [0, 1, 2, 3]
    edges = {(int(n_id[a]), int(n_id[b])) for a, b in ei.T}
    assert edges == {(1, 0), (0, 1), (2, 1), (1, 2), (3, 2)}  # every in-edge of {0, 1, 2}


@pytest.mark.parametrize("name", ["vidsage", "gcn", "gat", "sage-mean"])
def test_batched_exact_embedding_matches_full_graph(name):
    torch.manual_seed(0)
    model = build_model(name, 16, 16, 16)
    full = embed(model, X, G)
    batched = embed(model, X, G, max_full_nodes=0, batch_size=17)  # force the subgraph path
    np.testing.assert_allclose(batched, full, atol=1e-5)
    some = embed_nodes(model, X, G.edge_index, G.edge_weight, 120, targets=torch.tensor([5, 3]), max_full_nodes=0)
    np.testing.assert_allclose(some, full[[5, 3]], atol=1e-5)


def test_sampled_mode_uses_the_neighbor_sampler(tmp_path):
    res = train(X, G, TrainConfig(**{**SMALL, "epochs": 1}, full_graph=False), tmp_path, progress=False)
    assert res.resolved["sampler_backend"].startswith("NeighborSampler") and res.resolved["full_graph"] is False


def test_cli_trains_and_writes_embeddings(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    G.save(tmp_path / "g.pt")
    out = tmp_path / "run"
    rc = main(["--features", str(tmp_path / "x.npy"), "--graph", str(tmp_path / "g.pt"), "--out", str(out),
               "--epochs", "1", "--batch-size", "32", "--hidden-dim", "16", "--out-dim", "16",
               "--fanouts", "5", "3", "--full-graph", "false", "--no-progress"])
    assert rc == 0
    z = np.load(out / "embeddings.npy")
    assert z.shape == (120, 16)
    conf = json.loads((out / "config.json").read_text())["config"]
    assert conf["fanouts"] == [5, 3] and conf["full_graph"] is False
    assert "trained 4 steps" in capsys.readouterr().out


def test_cli_defaults_are_train_config_defaults():
    # A bare command line (as torchrun ranks get it) must train exactly what TrainConfig() and
    # `vidsage run` train; the boolean flags once defaulted to the paper's final ReLU instead.
    parser = argparse.ArgumentParser()
    add_train_arguments(parser)
    required = ["--features", "x.npy", "--graph", "g.pt", "--out", "run"]
    assert config_from_args(parser.parse_args(required)) == TrainConfig()
    flipped = config_from_args(parser.parse_args(required + ["--final-activation", "--no-share-weights",
                                                             "--no-amp"]))
    assert (flipped.final_activation, flipped.share_weights, flipped.amp) == (True, False, False)
    assert flipped == TrainConfig(final_activation=True, share_weights=False, amp=False)


def test_cli_help_mentions_torchrun(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "torchrun" in text and "--features" in text and "--resume" in text


def test_config_validation():
    with pytest.raises(ValueError, match="loss"):
        TrainConfig(loss="hinge")
    with pytest.raises(ValueError, match="full_graph"):
        TrainConfig(full_graph="yes")
    assert TrainConfig.from_dict(TrainConfig(fanouts=[3, 2]).to_dict()) == TrainConfig(fanouts=(3, 2))


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_training_from_a_memmap_store_equals_training_from_memory(tmp_path, dtype):
    # nanoGPT-style: each step reads its sampled rows from the store; the weights must be exactly
    # those of training on the same values held in RAM (float16 stores: the widened values).
    np.save(tmp_path / "x.npy", X.astype(dtype))
    store = open_store(tmp_path / "x.npy")
    assert isinstance(store, np.memmap) and store.dtype == dtype
    in_memory = np.asarray(store, dtype=np.float32).copy()
    cfg = TrainConfig(**SMALL, full_graph=False)
    a = train(store, G, cfg, tmp_path / "store", progress=False)
    b = train(in_memory, G, cfg, tmp_path / "ram", progress=False)
    assert _equal_state(a.model, b.model)
    assert [h["loss"] for h in a.history] == [h["loss"] for h in b.history]
    assert not _equal_state(a.model, train(in_memory, G, TrainConfig(**{**SMALL, "seed": 1}, full_graph=False),
                                           tmp_path / "other", progress=False).model)


def test_max_steps_stops_early_on_the_full_schedule(tmp_path):
    full = train(X, G, TrainConfig(**SMALL), tmp_path / "full", progress=False)
    short = train(X, G, TrainConfig(**SMALL, max_steps=3), tmp_path / "short", progress=False)
    assert [h["step"] for h in short.history] == [1, 2, 3]
    # the first three steps of the full run, same rates (the schedule spans the whole run)
    assert short.history == [dict(h, time=s["time"]) for h, s in zip(full.history[:3], short.history)]
    assert short.resolved["total_steps"] == 8


def test_sampled_training_never_holds_the_features_in_ram(tmp_path):
    # 300,000 x 1152 float16 store (691 MB on disk; 1.38 GB as float32). A few sampled steps must
    # keep the process's anonymous memory far below the float32 copy the old trainer made.
    import subprocess
    import sys

    script = tmp_path / "probe.py"
    script.write_text(MEMORY_PROBE)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    float32_bytes = 300_000 * 1152 * 4
    assert result["steps"] == 4
    assert result["rows_per_step_max"] < 50_000  # the sample is small, so its rows are too
    # growth of anonymous memory from before train() to its peak during the steps
    assert result["anon_growth_bytes"] < 0.25 * float32_bytes, result


MEMORY_PROBE = r'''
import json, sys, threading, time
from pathlib import Path

import numpy as np
import torch

torch.set_num_threads(1)
from vidsage_core.graph import build_graph
from vidsage_core.store import StoreWriter, open_store
from vidsage_core.train import TrainConfig, train

def anon() -> int:
    for line in open("/proc/self/status"):
        if line.startswith("RssAnon:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no RssAnon")

work = Path(sys.argv[1])
n, d = 300_000, 1152
rng = np.random.default_rng(0)
with StoreWriter(work / "x.npy", d, np.float16) as w:
    for s in range(0, n, 20_000):
        b = rng.standard_normal((20_000, d), dtype=np.float32)
        w.append(b / np.linalg.norm(b, axis=1, keepdims=True))
x = open_store(work / "x.npy")
rows = np.repeat(np.arange(n), 8)
g = build_graph(rows, rng.integers(0, n, rows.size), 1.0, n)
del rows
cfg = TrainConfig(hidden_dim=32, out_dim=32, batch_size=64, num_negatives=2, fanouts=(5, 5), epochs=1,
                  max_steps=4, checkpoint_every=1000, full_graph=False)
import gc; gc.collect()
base, peak, stop = anon(), [0], threading.Event()
def poll():
    while not stop.is_set():
        peak[0] = max(peak[0], anon()); time.sleep(0.002)
t = threading.Thread(target=poll, daemon=True); t.start()
res = train(x, g, cfg, work / "run", progress=False)
stop.set(); t.join()
print(json.dumps({"steps": len(res.history), "anon_growth_bytes": peak[0] - base, "base": base, "peak": peak[0],
                  "rows_per_step_max": max(h["nodes"] for h in res.history)}))
'''
