"""Tests for vidsage_core.evaluate on small synthetic problems (labelled synthetic)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from vidsage_core import evaluate as E
from vidsage_core.metrics import METRIC_KEYS, gap

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# Small, fast settings for every test; the real-data defaults are checked in a one-off script.
FAST = E.HeadConfig(epochs=25, lr=0.05, batch_size=32, device="cpu", seed=0)


def synthetic_video_level(n: int = 240, d: int = 16, c: int = 8, seed: int = 0):
    """Synthetic multi-label problem: class c is on when a fixed linear teacher says so."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)).astype(np.float32)
    teacher = rng.normal(size=(d, c))
    logits = x @ teacher
    y = (logits > np.quantile(logits, 0.8, axis=0)).astype(np.float32)
    y[np.arange(n), logits.argmax(1)] = 1  # every video has a label
    return x, sp.csr_matrix(y)


def synthetic_frames(n: int = 160, f: int = 10, d: int = 12, c: int = 5, seed: int = 0):
    """Synthetic frame-level problem: each video has one topic whose direction is present in
    a random half of its frames (other frames are noise), label = topic."""
    rng = np.random.default_rng(seed)
    topics = rng.integers(0, c, n)
    directions = rng.normal(size=(c, d)) * 1.5
    frames = rng.normal(size=(n, f, d)) * 0.5
    num_frames = rng.integers(3, f + 1, n)
    for i in range(n):
        on = rng.random(f) < 0.5
        on[0] = True
        frames[i, on] += directions[topics[i]]
        frames[i, num_frames[i] :] = 0  # zero padding after the valid frames
    y = sp.csr_matrix((np.ones(n, np.float32), (np.arange(n), topics)), shape=(n, c))
    return E.FrameInput(frames.astype(np.float16), num_frames.astype(np.int32)), y


def split_frames(inp: E.FrameInput, idx: np.ndarray) -> E.FrameInput:
    return E.FrameInput(inp.frames[idx], inp.num_frames[idx])


def test_head_config_is_frozen_with_documented_defaults() -> None:
    cfg = E.HeadConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        cfg.lr = 1.0  # type: ignore[misc]
    assert cfg.num_mixtures == 2 and cfg.seed == 0 and cfg.device == "auto"
    assert E.HEADS == ("logistic", "hinge", "moe")
    assert E.FRAME_HEADS == ("logistic_average", "dbof", "lstm", "moe_mu_sigma_top5")
    # Epochs: per head from the validation measurements unless set for all heads.
    assert [cfg.epochs_for(h) for h in E.HEADS] == [8, 5, 5]
    assert cfg.epochs_for("lstm") == E.DEFAULT_HEAD_EPOCHS
    assert E.HeadConfig(epochs=3).epochs_for("moe") == 3


@pytest.mark.parametrize("name", E.HEADS)
def test_fit_head_trains_for_the_head_s_epochs(name: str) -> None:
    x, y = synthetic_video_level(n=64)
    head = E.fit_head(name, x, y, E.HeadConfig(batch_size=32, device="cpu"))
    assert [h["epoch"] for h in head.history] == list(range(1, E.HEAD_EPOCHS[name] + 1))


def test_hinge_loss_hand_worked() -> None:
    # z = [2, -0.5], labels [1, 0] -> signs [+1, -1]; b = 1:
    #   max(0, 1 - 2) = 0 and max(0, 1 - (-1)(-0.5)) = 0.5; summed over classes: 0.5.
    model = E._Linear(2, 2, np.array([0.5, 0.5]), "hinge", margin=1.0)
    with torch.no_grad():
        model.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        model.fc.bias.zero_()
    loss = model.loss(torch.tensor([[2.0, -0.5]]), torch.tensor([[1.0, 0.0]]))
    assert float(loss.detach()) == pytest.approx(0.5)


def test_logistic_loss_is_bce_summed_over_classes() -> None:
    # Zero weights, prior 0.5 -> bias 0 -> p = 0.5 everywhere: loss = 2 classes * log 2.
    model = E._Linear(3, 2, np.array([0.5, 0.5]), "logistic", margin=1.0)
    loss = model.loss(torch.ones(4, 3), torch.tensor([[1.0, 0.0]] * 4))
    assert float(loss.detach()) == pytest.approx(2 * np.log(2), rel=1e-6)


def test_moe_forward_hand_worked() -> None:
    # All weights zero, expert bias 0: gates are uniform over 2 experts + dummy -> 1/3 each;
    # experts say sigmoid(0) = 1/2; p = 2 * (1/3 * 1/2) = 1/3 for every class.
    moe = E._Moe(4, 3, num_mixtures=2, prior=np.full(3, 0.5))
    with torch.no_grad():
        for p in moe.parameters():
            p.zero_()
    assert torch.allclose(moe(torch.randn(5, 4)), torch.full((5, 3), 1 / 3))
    # YouTube-8M's cross-entropy (eps 1e-5) summed over 3 classes for label [1, 0, 0]:
    # -(log(1/3 + 1e-5) + 2 log(2/3 + 1e-5)).
    y = torch.tensor([[1.0, 0.0, 0.0]])
    expected = -(np.log(1 / 3 + 1e-5) + 2 * np.log(2 / 3 + 1e-5))
    assert float(moe.loss(torch.zeros(1, 4), y).detach()) == pytest.approx(expected, rel=1e-5)


def test_moe_probabilities_match_the_per_class_definition() -> None:
    # Random logits in YouTube-8M's layout (class c's gates at c*(m+1) + j, its experts at
    # c*m + j): p_c = sum_{j<m} softmax(g_c)_j * sigmoid(e_cj), the softmax over m + 1 gates.
    rng = np.random.default_rng(0)
    b, c, m = 4, 5, 2
    g = rng.normal(scale=3, size=(b, c * (m + 1)))
    e = rng.normal(scale=3, size=(b, c * m))
    want = np.zeros((b, c))
    for v in range(b):
        for k in range(c):
            w = np.exp(g[v, k * (m + 1):(k + 1) * (m + 1)])
            w /= w.sum()
            want[v, k] = sum(w[j] / (1 + np.exp(-e[v, k * m + j])) for j in range(m))
    got = E.moe_probabilities(torch.tensor(g, dtype=torch.float32), torch.tensor(e, dtype=torch.float32), m)
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("name", E.HEADS)
def test_video_heads_learn_and_predict_shapes(name: str) -> None:
    x, y = synthetic_video_level()
    tr, te = np.arange(160), np.arange(160, 240)
    head = E.fit_head(name, x[tr], y[tr], FAST)
    scores = E.predict(head, x[te])
    assert scores.shape == (80, 8) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    # Chance GAP here is ~0.25 (about 2 labels among 8 classes); the teacher is linear.
    assert gap(scores, y[te]) > 0.75
    assert len(head.history) == FAST.epochs
    assert head.history[-1]["loss"] < head.history[0]["loss"]


@pytest.mark.parametrize("name", ["logistic", "moe"])
def test_fit_is_deterministic_for_a_seed(name: str) -> None:
    x, y = synthetic_video_level(n=96)
    cfg = dataclasses.replace(FAST, epochs=3)
    a = E.predict(E.fit_head(name, x, y, cfg), x)
    b = E.predict(E.fit_head(name, x, y, cfg), x)
    assert np.array_equal(a, b)
    c = E.predict(E.fit_head(name, x, y, dataclasses.replace(cfg, seed=1)), x)
    assert not np.array_equal(a, c)


def test_unseen_classes_score_zero_unless_asked() -> None:
    x, y = synthetic_video_level(n=96)
    y = y.tolil()
    y[:, 3] = 0  # class 3 never positive in training
    y = y.tocsr()
    cfg = dataclasses.replace(FAST, epochs=2)
    head = E.fit_head("logistic", x, y, cfg)
    assert head.classes.tolist() == [0, 1, 2, 4, 5, 6, 7]
    assert np.all(E.predict(head, x)[:, 3] == 0)
    head_all = E.fit_head("logistic", x, y, dataclasses.replace(cfg, only_seen_classes=False))
    assert np.all(E.predict(head_all, x)[:, 3] > 0)


def test_dense_and_sparse_labels_give_the_same_head() -> None:
    x, y = synthetic_video_level(n=64)
    cfg = dataclasses.replace(FAST, epochs=2)
    a = E.predict(E.fit_head("logistic", x, y, cfg), x)
    b = E.predict(E.fit_head("logistic", x, y.toarray(), cfg), x)
    assert np.array_equal(a, b)


def test_evaluate_head_returns_all_metrics() -> None:
    x, y = synthetic_video_level()
    out = E.evaluate_head("logistic", x[:160], y[:160], x[160:], y[160:], FAST)
    assert set(METRIC_KEYS) <= set(out)
    assert out["head"] == "logistic" and out["num_train"] == 160 and out["num_test"] == 80
    assert out["gap"] > 0.75 and 0 < out["hit_at_one"] <= 1


def test_frame_statistics_hand_worked() -> None:
    # One video, 3 stored frames of which 2 are valid: [1, 2] and [3, 4].
    frames = np.array([[[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]], dtype=np.float16)
    stats = E.frame_statistics(E.FrameInput(frames, np.array([2])), top_k=3)
    # mean [2, 3]; std [1, 1]; top-1 [3, 4], top-2 [1, 2], top-3 missing -> mean [2, 3].
    assert stats.tolist() == [[2, 3, 1, 1, 3, 4, 1, 2, 2, 3]]


@pytest.mark.parametrize("name", E.FRAME_HEADS)
def test_frame_heads_learn_on_synthetic_frames(name: str) -> None:
    inp, y = synthetic_frames()
    tr, te = np.arange(120), np.arange(120, 160)
    cfg = E.HeadConfig(
        epochs=12, lr=0.01, batch_size=20, device="cpu", sample_frames=6,
        dbof_cluster_size=32, dbof_hidden_size=16, lstm_cells=16, lstm_layers=2,
    )
    head = E.fit_head(name, split_frames(inp, tr), y[tr], cfg)
    scores = E.predict(head, split_frames(inp, te))
    assert scores.shape == (40, 5)
    # Chance GAP with 1 label among 5 classes is ~0.46 (AP of a random ranking of 5).
    assert gap(scores, y[te]) > 0.85, name
    # Prediction is deterministic (DBoF samples evenly spaced frames in eval mode).
    np.testing.assert_array_equal(scores, E.predict(head, split_frames(inp, te)))


def test_input_errors() -> None:
    x, y = synthetic_video_level(n=32)
    with pytest.raises(ValueError, match="unknown head"):
        E.fit_head("svm", x, y, FAST)
    with pytest.raises(ValueError, match="frame-level inputs"):
        E.fit_head("dbof", x, y, FAST)
    with pytest.raises(ValueError, match="rows"):
        E.fit_head("logistic", x, y[:10], FAST)
    with pytest.raises(ValueError, match="no positive"):
        E.fit_head("logistic", x, sp.csr_matrix(y.shape, dtype=np.float32), FAST)
