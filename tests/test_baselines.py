"""Non-learned / decoupled baselines: hand-worked answers, a numpy reference, inductivity."""

import numpy as np
import pytest
import scipy.sparse as sp

from vidsage_core import baselines as B

# The hand graph used below: three train+val videos, one test video, k = 2.
#   video 0 <- 1, 2    video 1 <- 0, 2    video 2 <- 0, 1    test <- 0 (one valid neighbour)
HAND = B.Neighbours(trainval=np.array([[1, 2], [0, 2], [0, 1]]), test=np.array([[0, -1]]))


def _dense_a(nb: B.Neighbours) -> np.ndarray:
    """Row-normalised adjacency over train+val then test nodes, written out densely."""
    idx = np.concatenate([nb.trainval, nb.test])
    a = np.zeros((len(idx), len(idx)))
    for i, row in enumerate(idx):
        valid = row[row >= 0]
        a[i, valid] = 1.0 / len(valid)
    return a


def _lp_numpy(y0: np.ndarray, a: np.ndarray, layers: int, alpha: float, post=None) -> np.ndarray:
    """Label propagation as the C&S paper writes it, literally."""
    out = y0.copy()
    for _ in range(layers):
        out = alpha * (a @ out) + (1 - alpha) * y0
        out = np.clip(out, 0, 1) if post is None else post(out)
    return out


def _cs_numpy(z: np.ndarray, y_lab: np.ndarray, mask: np.ndarray, a: np.ndarray,
              cfg: B.PropagationConfig) -> np.ndarray:
    """Correct (autoscaled) and Smooth, literally, on dense arrays."""
    err = np.zeros_like(z)
    err[mask] = y_lab - z[mask]
    smoothed = _lp_numpy(err, a, cfg.cs_correction_layers, cfg.cs_correction_alpha,
                         post=lambda e: np.clip(e, -1, 1))
    sigma = np.abs(err[mask]).sum() / len(mask)
    with np.errstate(divide="ignore"):
        scale = sigma / np.abs(smoothed).sum(1, keepdims=True)
    scale[np.isinf(scale) | (scale > 1000)] = 1.0
    corrected = z + scale * smoothed
    corrected[mask] = y_lab
    return _lp_numpy(corrected, a, cfg.cs_smoothing_layers, cfg.cs_smoothing_alpha)


def test_propagation_matrix_is_the_row_normalised_knn_adjacency_with_no_test_sender():
    a = B.propagation_graph(HAND).to_dense().numpy()
    expected = np.array([[0, .5, .5, 0], [.5, 0, .5, 0], [.5, .5, 0, 0], [1, 0, 0, 0]])
    np.testing.assert_allclose(a, expected)
    assert not a[:, 3].any()  # the test node sends nothing


def test_label_propagation_one_layer_by_hand():
    # Labels of videos 0 and 1 only; video 2's labels (class 2) must never be read.
    y = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]], dtype=np.float32))
    tv, te = B.label_propagation(y, np.array([0, 1]), HAND, B.PropagationConfig(lp_layers=1,
                                                                                 lp_alpha=0.5))
    # Y1 = 0.5·A·Y0 + 0.5·Y0 with Y0 = [[1,0],[0,1],[0,0],[0,0]] over the two seen classes:
    # A·Y0 = [[0,.5],[.5,0],[.5,.5],[1,0]].
    np.testing.assert_allclose(tv, [[.5, .25, 0], [.25, .5, 0], [.25, .25, 0]])
    np.testing.assert_allclose(te, [[.5, 0, 0]])


def test_correct_and_smooth_one_layer_each_by_hand():
    # One class; labelled: video 0 (positive), video 1 (negative); base scores Z.
    y = sp.csr_matrix(np.array([[1, 0], [0, 0], [0, 1]], dtype=np.float32))
    z_tv = np.array([[.6, .9], [.2, .9], [.5, .9]], dtype=np.float32)
    z_te = np.array([[.4, .9]], dtype=np.float32)
    cfg = B.PropagationConfig(cs_correction_layers=1, cs_correction_alpha=0.5,
                              cs_smoothing_layers=1, cs_smoothing_alpha=0.5)
    tv, te = B.correct_and_smooth(z_tv, z_te, y, np.array([0, 1]), HAND, cfg)
    # Correct: E = [.4, -.2, 0, 0]; 0.5·A·E + 0.5·E = [.15, 0, .05, .2]; sigma = (.4 + .2) / 2
    # = .3; each row rescaled to |.3| (row 1 is 0: scale falls back to 1):
    # Z' = [.6 + .3, .2 + 0, .5 + .3, .4 + .3] = [.9, .2, .8, .7].
    # Smooth: labelled rows reset -> [1, 0, .8, .7]; 0.5·A·that + 0.5·that
    # = [.5·.4 + .5, .5·.9 + 0, .5·.5 + .4, .5·1 + .35] = [.7, .45, .65, .85].
    # Class 1 has no labelled positive (only unlabelled video 2 has it): score 0.
    np.testing.assert_allclose(tv, [[.7, 0], [.45, 0], [.65, 0]], atol=1e-6)
    np.testing.assert_allclose(te, [[.85, 0]], atol=1e-6)


def _random_case(seed=0, n=40, m=12, c=6, k=4):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n + m, 5)).astype(np.float32)
    nb = B.knn_neighbours(x[:n], x[n:], k=k, device="cpu")
    y = sp.csr_matrix((rng.random((n, c)) < 0.3).astype(np.float32))
    z = rng.random((n + m, c)).astype(np.float32)
    lab = np.sort(rng.choice(n, size=n // 2, replace=False))
    return x, nb, y, z, lab


def test_label_propagation_and_cs_agree_with_a_literal_numpy_recomputation():
    _, nb, y, z, lab = _random_case()
    n = nb.num_trainval
    a = _dense_a(nb)
    seen = np.flatnonzero(np.asarray(y[lab].sum(0)).ravel() > 0)
    cfg = B.PropagationConfig(lp_layers=3, lp_alpha=0.7, cs_correction_layers=2,
                              cs_correction_alpha=0.6, cs_smoothing_layers=2, cs_smoothing_alpha=0.4)
    y0 = np.zeros((a.shape[0], y.shape[1]))
    y0[lab] = y[lab].toarray()
    want = _lp_numpy(y0[:, seen], a, 3, 0.7)
    tv, te = B.label_propagation(y, lab, nb, cfg)
    np.testing.assert_allclose(np.concatenate([tv, te])[:, seen], want, atol=1e-5)
    want = _cs_numpy(z[:, seen].astype(np.float64), y[lab][:, seen].toarray(), lab, a, cfg)
    tv, te = B.correct_and_smooth(z[:n], z[n:], y, lab, nb, cfg)
    np.testing.assert_allclose(np.concatenate([tv, te])[:, seen], want, atol=1e-5)


def test_sign_features_on_the_hand_graph():
    x_tv = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    x_te = np.array([[8.0]], dtype=np.float32)
    f_tv, f_te = B.sign_features(x_tv, x_te, HAND, hops=2)
    # Ax: [(2+4)/2, (1+4)/2, (1+2)/2] = [3, 2.5, 1.5], test: x_0 = 1.
    # A²x: [(2.5+1.5)/2, (3+1.5)/2, (3+2.5)/2] = [2, 2.25, 2.75], test: (Ax)_0 = 3.
    np.testing.assert_allclose(f_tv, [[1, 3, 2], [2, 2.5, 2.25], [4, 1.5, 2.75]])
    np.testing.assert_allclose(f_te, [[8, 1, 3]])


def test_sgc_features_use_the_shared_neighbours():
    x_tv = np.array([[1.0], [2.0], [4.0]], dtype=np.float32)
    f_tv, f_te = B.sgc_features(x_tv, np.array([[8.0]], np.float32), neighbours=HAND)
    np.testing.assert_allclose(f_tv, [[1, 2], [2, 2.25], [4, 2.75]])  # [x, ½x + ½Ax]
    np.testing.assert_allclose(f_te, [[8, 4.5]])


def test_test_videos_never_change_train_rows_and_test_labels_are_never_an_input():
    x, nb, y, z, lab = _random_case(seed=1)
    n = nb.num_trainval
    rng = np.random.default_rng(5)
    x_te2 = rng.normal(size=(x.shape[0] - n, x.shape[1])).astype(np.float32)
    nb2 = B.knn_neighbours(x[:n], x_te2, k=4, device="cpu")
    np.testing.assert_array_equal(nb.trainval, nb2.trainval)
    z_te2 = rng.random(z[n:].shape).astype(np.float32)
    for f in (lambda nb_, zte: B.label_propagation(y, lab, nb_)[0],
              lambda nb_, zte: B.correct_and_smooth(z[:n], zte, y, lab, nb_)[0],
              lambda nb_, zte: B.sign_features(x[:n], x[n:] if nb_ is nb else x_te2, nb_)[0]):
        np.testing.assert_array_equal(f(nb, z[n:]), f(nb2, z_te2))
    # Labels outside the labelled rows (the unlabelled train+val videos here; test videos have
    # no way in) change nothing: replace them by random ones.
    y_other = y.toarray()
    unlabelled = np.setdiff1d(np.arange(n), lab)
    y_other[unlabelled] = rng.random((len(unlabelled), y.shape[1])) < 0.5
    y_other = sp.csr_matrix(y_other)
    for fn in (lambda yy: B.label_propagation(yy, lab, nb),
               lambda yy: B.correct_and_smooth(z[:n], z[n:], yy, lab, nb)):
        for a, b in zip(fn(y), fn(y_other)):
            np.testing.assert_array_equal(a, b)


def test_bad_rows_are_refused_with_a_clear_message():
    y = sp.csr_matrix(np.eye(3, dtype=np.float32))
    with pytest.raises(ValueError, match="labelled rows"):
        B.label_propagation(y, np.array([5]), HAND)
    with pytest.raises(ValueError, match="labels have 2 rows"):
        B.label_propagation(y[:2], np.array([0]), HAND)


def test_sgc_features_average_the_k_nearest_train_videos_by_hand():
    # Four unit vectors on a line of angles; k=1: each video's nearest other train video.
    ang = np.array([0.0, 0.1, 1.0, 1.2])
    x = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    x_test = np.array([[np.cos(0.95), np.sin(0.95)]], dtype=np.float32)
    f_tv, f_te = B.sgc_features(x, x_test, k=1, device="cpu")
    nearest = [1, 0, 3, 2]  # by hand: 0<->1 (0.1 apart), 2<->3 (0.2 apart)
    np.testing.assert_allclose(f_tv[:, :2], x)
    np.testing.assert_allclose(f_tv[:, 2:], 0.5 * x + 0.5 * x[nearest], rtol=1e-6)
    np.testing.assert_allclose(f_te[0, 2:], 0.5 * x_test[0] + 0.5 * x[2], rtol=1e-6)  # 0.95 ~ 1.0
