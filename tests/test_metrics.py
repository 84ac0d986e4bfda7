"""Tests for vidsage_core.metrics: hand-worked examples, scikit-learn, and literal YT-8M loops."""

from __future__ import annotations

import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import average_precision_score

from vidsage_core import metrics as M

# Two videos, three classes: used by several hand-worked tests below.
S2 = np.array([[0.9, 0.8, 0.1], [0.7, 0.2, 0.6]])
Y2 = np.array([[1, 0, 1], [0, 0, 1]])


# --------------------------------------------------------------------------- literal references
def _yt8m_ap(pairs: list[tuple[float, int]], num_positives: int) -> float:
    """AveragePrecisionCalculator.ap_at_n(n=None) on a tie-free list, written as a plain loop."""
    if num_positives == 0:
        return 0.0
    ranked = sorted(pairs, key=lambda p: p[0], reverse=True)
    ap, poscount = 0.0, 0
    for i, (_, actual) in enumerate(ranked):
        if actual > 0:
            poscount += 1
            ap += poscount / (i + 1) / num_positives
    return ap


def _yt8m_top_k(row_scores: np.ndarray, k: int) -> list[int]:
    return sorted(range(len(row_scores)), key=lambda j: -row_scores[j])[: min(k, len(row_scores))]


def ref_gap(scores: np.ndarray, labels: np.ndarray, top_k: int = 20) -> float:
    pool = []
    for i in range(scores.shape[0]):
        for j in _yt8m_top_k(scores[i], top_k):
            pool.append((scores[i, j], labels[i, j]))
    return _yt8m_ap(pool, int(labels.sum()))


def ref_map(scores: np.ndarray, labels: np.ndarray, top_k: int = 20) -> float:
    per_class: dict[int, list] = {c: [] for c in range(scores.shape[1])}
    for i in range(scores.shape[0]):
        for j in _yt8m_top_k(scores[i], top_k):
            per_class[j].append((scores[i, j], labels[i, j]))
    aps = [
        _yt8m_ap(per_class[c], int(labels[:, c].sum()))
        for c in range(scores.shape[1])
        if labels[:, c].sum() > 0  # filter_empty_classes=True
    ]
    return float(np.mean(aps))


def ref_perr(scores: np.ndarray, labels: np.ndarray) -> float:
    total = 0.0
    for i in range(scores.shape[0]):
        k = int(labels[i].sum())
        top = _yt8m_top_k(scores[i], k) if k > 0 else list(range(scores.shape[1]))
        total += sum(labels[i, j] for j in top if scores[i, j] > 0) / len(top)
    return total / scores.shape[0]


def ref_hit_at_one(scores: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean([labels[i, int(np.argmax(scores[i]))] for i in range(scores.shape[0])]))


def ref_top_k_accuracy(scores: np.ndarray, labels: np.ndarray, k: int) -> float:
    hits = [any(labels[i, j] for j in _yt8m_top_k(scores[i], k)) for i in range(scores.shape[0])]
    return float(np.mean(hits))


def random_problem(seed: int, n: int = 60, c: int = 30, density: float = 0.08):
    """Tie-free float64 scores loosely correlated with sparse random labels."""
    rng = np.random.default_rng(seed)
    labels = (rng.random((n, c)) < density).astype(np.int64)
    labels[rng.integers(0, n, 3), rng.integers(0, c, 3)] = 1
    scores = rng.random((n, c)) + 0.5 * labels * rng.random((n, c))
    assert np.unique(scores).size == scores.size  # tie-free
    return scores, labels


# --------------------------------------------------------------------------- hand-worked
def test_gap_hand_worked() -> None:
    # Top-2 per video: v0 -> (0.9, +), (0.8, -); v1 -> (0.7, -), (0.6, +). 3 positives in all.
    # Pool sorted: 0.9+ 0.8- 0.7- 0.6+ -> precisions at hits 1/1, 2/4 -> (1 + 0.5) / 3 = 0.5.
    assert M.gap(S2, Y2, top_k=2) == pytest.approx(0.5)
    # Top-3 adds v1 (0.2, -) and v0 (0.1, +): hits at ranks 1, 4, 6 -> (1 + 2/4 + 3/6) / 3 = 2/3.
    assert M.gap(S2, Y2, top_k=3) == pytest.approx(2 / 3)
    # top_k beyond C is clipped to C.
    assert M.gap(S2, Y2, top_k=50) == pytest.approx(2 / 3)


def test_gap_denominator_counts_positives_outside_top_k() -> None:
    # One video, positive at the bottom of 3 classes; top-1 keeps only (0.9, -): AP = 0 / 1.
    assert M.gap([[0.9, 0.5, 0.1]], [[0, 0, 1]], top_k=1) == 0.0
    # Positive ranked first of two positives, top-1: 1/1 over 2 positives -> 0.5.
    assert M.gap([[0.9, 0.5, 0.1]], [[1, 0, 1]], top_k=1) == pytest.approx(0.5)
    assert M.gap([[0.9, 0.5]], [[0, 0]]) == 0.0  # no positives: YouTube-8M returns 0


def test_hit_at_one_and_top_k_hand_worked() -> None:
    # argmax: v0 -> class 0 (+), v1 -> class 0 (-): 1/2.
    assert M.hit_at_one(S2, Y2) == pytest.approx(0.5)
    assert M.top_k_accuracy(S2, Y2, 1) == pytest.approx(0.5)
    # Top-2: v0 {0, 1} has class 0 (+); v1 {0, 2} has class 2 (+): 2/2.
    assert M.top_k_accuracy(S2, Y2, 2) == pytest.approx(1.0)
    # Ties: argmax keeps the first maximum (class 0, a miss); our order breaks ties by class.
    assert M.hit_at_one([[0.5, 0.5]], [[0, 1]]) == 0.0
    assert M.top_k_accuracy([[0.5, 0.5, 0.5]], [[0, 0, 1]], 2) == 0.0
    assert M.top_k_accuracy([[0.5, 0.5, 0.5]], [[0, 1, 0]], 2) == 1.0


def test_perr_hand_worked() -> None:
    # v0 has k=2 positives; its top-2 {0, 1} has 1 positive -> 1/2. v1 has k=1; top-1 {0} -> 0.
    # Mean over 2 videos: 0.25.
    assert M.perr(S2, Y2) == pytest.approx(0.25)
    # A video without labels counts as precision 0 in the mean (YouTube-8M): (1 + 0) / 2.
    assert M.perr([[0.5, 0.2], [0.3, 0.1]], [[1, 0], [0, 0]]) == pytest.approx(0.5)
    # A top-k prediction with score <= 0 is not counted (YouTube-8M's `predictions > 0`).
    assert M.perr([[-0.5, -0.9]], [[1, 0]]) == 0.0


def test_map_at_top_k_hand_worked() -> None:
    # Top-2 per video split by class: class 0 gets (0.9, +) from v0 and (0.7, -) from v1; it has
    # 1 positive -> AP 1/1 / 1 = 1. Class 1 gets (0.8, -) and has no positive -> dropped.
    # Class 2 gets (0.6, +) from v1 and has 2 positives (v0's 0.1 was cut) -> (1/1) / 2 = 0.5.
    # Mean over classes 0 and 2: 0.75.
    assert M.map_at_top_k(S2, Y2, top_k=2) == pytest.approx(0.75)
    # Keeping the empty class as AP 0 and dividing by C = 3: (1 + 0 + 0.5) / 3 = 0.5.
    assert M.map_at_top_k(S2, Y2, top_k=2, drop_empty_classes=False) == pytest.approx(0.5)


def test_mean_ap_hand_worked_and_ties() -> None:
    # One class: + - + - -> precisions at hits 1/1, 2/3 -> (1 + 2/3) / 2 = 5/6.
    s = np.array([[0.9], [0.8], [0.7], [0.6]])
    y = np.array([[1], [0], [1], [0]])
    assert M.mean_ap(s, y) == pytest.approx(5 / 6)
    # Ties form one threshold: {0.8, 0.8, 0.8} holds 1 positive -> precision 1/3 for it; then
    # 0.5 (+) at rank 4 with 2 hits -> 2/4. AP = (1/3 + 1/2) / 2 = 5/12, whatever the tie order.
    s = np.array([[0.8], [0.8], [0.8], [0.5]])
    y = np.array([[1], [0], [0], [1]])
    assert M.mean_ap(s, y) == pytest.approx(5 / 12)
    assert M.mean_ap(s, y) == pytest.approx(average_precision_score(y[:, 0], s[:, 0]))
    # The same tie rule inside GAP (top_k = C = 1 pools everything): 5/12 as well.
    assert M.gap(s, y, top_k=1) == pytest.approx(5 / 12)


def test_bucketed_map_hand_worked() -> None:
    # D = 4: thresholds 0, .25, .5, .75 (ceiling 1). Scores .9 .8 | .6 | .3 | .1 with labels
    # + - | + | - | + fall in buckets 4, 4, 3, 2, 1. Three positives, each bucket's gain 1/3:
    #   P(.75) = 1/2 (gain 1/3), P(.5) = 2/3 (gain 1/3), P(.25) = 2/4 (gain 0), P(0) = 3/5 (1/3)
    #   AP = (1/2 + 2/3 + 3/5) / 3 = 53/90  (the exact AP would be (1 + 2/3 + 3/5) / 3 = 34/45).
    s = np.array([0.9, 0.8, 0.6, 0.3, 0.1])[:, None]
    y = np.array([1, 0, 1, 0, 1])[:, None]
    assert M.bucketed_map(s, y, num_buckets=4) == pytest.approx(53 / 90)
    assert M.mean_ap(s, y) == pytest.approx(34 / 45)
    # A second class with AP 1 (its only positive on top) and a third without positives
    # (dropped; its 0 and 1 pin the score range to [0, 1]): mean (53/90 + 1) / 2.
    third = np.array([[0.0], [1.0], [0.5], [0.5], [0.5]])
    s3 = np.hstack([s, np.array([[0.95], [0.1], [0.2], [0.3], [0.4]]), third])
    y3 = np.hstack([y, np.array([[1], [0], [0], [0], [0]]), np.zeros((5, 1), dtype=int)])
    assert M.bucketed_map(s3, y3, num_buckets=4) == pytest.approx((53 / 90 + 1) / 2)
    # Out-of-range scores are min-max rescaled together, which undoes this affine map exactly.
    assert M.bucketed_map(s3 * 10 - 5, y3, num_buckets=4) == pytest.approx((53 / 90 + 1) / 2)


def test_all_metrics_keys_and_values() -> None:
    out = M.all_metrics(S2, Y2)
    assert tuple(out) == M.METRIC_KEYS
    assert out["gap"] == pytest.approx(2 / 3)  # top_k=20 clipped to C=3
    assert out["hit_at_one"] == out["top1"] == pytest.approx(0.5)
    assert out["perr"] == pytest.approx(0.25)
    assert all(isinstance(v, float) for v in out.values())


# --------------------------------------------------------------------------- references
@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("top_k", [1, 5, 20])
def test_yt8m_metrics_match_literal_loops(seed: int, top_k: int) -> None:
    scores, labels = random_problem(seed)
    assert M.gap(scores, labels, top_k) == pytest.approx(ref_gap(scores, labels, top_k), abs=1e-6)
    assert M.map_at_top_k(scores, labels, top_k) == pytest.approx(
        ref_map(scores, labels, top_k), abs=1e-6
    )
    assert M.top_k_accuracy(scores, labels, top_k) == pytest.approx(
        ref_top_k_accuracy(scores, labels, top_k), abs=1e-12
    )


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_perr_and_hit_match_literal_loops(seed: int) -> None:
    scores, labels = random_problem(seed)
    labels[0] = 0  # include a video without labels
    scores[1] -= 0.8  # and some non-positive scores
    assert M.perr(scores, labels) == pytest.approx(ref_perr(scores, labels), abs=1e-6)
    assert M.hit_at_one(scores, labels) == pytest.approx(ref_hit_at_one(scores, labels), abs=1e-12)


@pytest.mark.parametrize("seed", [0, 1])
def test_mean_ap_matches_sklearn_with_and_without_ties(seed: int) -> None:
    scores, labels = random_problem(seed, n=80, c=25)
    has = labels.sum(0) > 0
    expected = average_precision_score(labels[:, has], scores[:, has], average="macro")
    assert M.mean_ap(scores, labels) == pytest.approx(expected, abs=1e-9)
    tied = np.round(scores, 1)  # heavy ties
    expected = average_precision_score(labels[:, has], tied[:, has], average="macro")
    assert M.mean_ap(tied, labels, chunk_classes=7) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize("seed", [0, 1])
def test_gap_equals_pooled_sklearn_ap_when_top_k_covers_all_classes(seed: int) -> None:
    scores, labels = random_problem(seed, c=12)
    expected = average_precision_score(labels.ravel(), scores.ravel())
    assert M.gap(scores, labels, top_k=12) == pytest.approx(expected, abs=1e-9)
    tied = np.round(scores, 1)
    expected = average_precision_score(labels.ravel(), tied.ravel())
    assert M.gap(tied, labels, top_k=100) == pytest.approx(expected, abs=1e-9)


def test_bucketed_map_equals_exact_ap_with_one_score_per_bucket() -> None:
    rng = np.random.default_rng(3)
    n, c = 40, 6
    labels = (rng.random((n, c)) < 0.2).astype(int)
    labels[0] = 1
    # Every score at the centre of its own bucket of width 1 / (n * c).
    scores = ((rng.permutation(n * c) + 0.5) / (n * c)).reshape(n, c)
    assert M.bucketed_map(scores, labels, num_buckets=n * c) == pytest.approx(
        M.mean_ap(scores, labels), abs=1e-12
    )
    # Coarser buckets can only pool items; the result stays a valid AP in [0, 1].
    assert 0.0 <= M.bucketed_map(scores, labels, num_buckets=5) <= 1.0


def test_sparse_and_dense_labels_agree() -> None:
    scores, labels = random_problem(4)
    dense = M.all_metrics(scores, labels)
    csr = sp.csr_matrix(labels.astype(np.float32))
    csr_with_explicit_zero = csr.copy()
    csr_with_explicit_zero.data[0] = 0.0  # stored zeros are not positives
    labels_zeroed = labels.copy()
    r, cidx = csr.nonzero()
    labels_zeroed[r[0], cidx[0]] = 0
    assert M.all_metrics(scores, csr) == pytest.approx(dense)
    assert M.all_metrics(scores, csr_with_explicit_zero) == pytest.approx(
        M.all_metrics(scores, labels_zeroed)
    )


def test_top_k_tie_break_is_by_class_index() -> None:
    scores = np.array([[0.2, 0.5, 0.5, 0.5, 0.1], [0.3, 0.3, 0.3, 0.3, 0.3]])
    assert M._top_k(scores, 2).tolist() == [[1, 2], [0, 1]]
    assert M._top_k(scores, 4).tolist() == [[1, 2, 3, 0], [0, 1, 2, 3]]
    assert M._top_k(scores, 5).tolist() == [[1, 2, 3, 0, 4], [0, 1, 2, 3, 4]]


def test_input_errors() -> None:
    with pytest.raises(ValueError, match="shape"):
        M.gap(np.zeros((2, 3)), np.zeros((2, 4)))
    with pytest.raises(ValueError, match="NaN"):
        M.gap(np.array([[np.nan, 1.0]]), np.array([[0, 1]]))
    with pytest.raises(ValueError, match="k must be"):
        M.gap(np.zeros((2, 3)), np.zeros((2, 3)), top_k=0)


def test_gap_is_fast_at_yt8m_test_size() -> None:
    # 2,817 x 3,862 is the real test split; the budget is ~0.5 s (loose bound for a shared box).
    rng = np.random.default_rng(0)
    scores = rng.random((2817, 3862), dtype=np.float32)
    labels = sp.random(2817, 3862, density=0.001, format="csr", random_state=0)
    labels.data[:] = 1
    t = time.perf_counter()
    M.gap(scores, labels)
    assert time.perf_counter() - t < 2.0


# --------------------------------------------------------------------------- retrieval metrics
def _literal_precision_at_k(relevant, k):
    total = 0.0
    for row in relevant:
        hits = 0
        for i in range(k):
            if i < len(row) and row[i]:
                hits += 1
        total += hits / k
    return total / len(relevant)


def _literal_map_at_k(relevant, num_relevant, k):
    total = 0.0
    for row, r in zip(relevant, num_relevant):
        hits, ap = 0, 0.0
        for i in range(min(k, len(row))):
            if row[i]:
                hits += 1
                ap += hits / (i + 1)
        total += ap / min(r, k) if r > 0 else 0.0
    return total / len(relevant)


@pytest.mark.parametrize("seed", range(5))
def test_retrieval_precision_and_map_match_a_literal_loop(seed):
    from vidsage_core.metrics import retrieval_map_at_k, retrieval_precision_at_k

    rng = np.random.default_rng(seed)
    q, width = 37, 120
    rel = rng.random((q, width)) < rng.uniform(0.05, 0.6)
    rel[1] = False
    num = rel.sum(1) + rng.integers(0, 50, size=q)  # more relevant videos than listed
    num[1] = 0  # a query nothing in the database can answer
    for k in (1, 10, 100):
        assert retrieval_precision_at_k(rel, k) == pytest.approx(_literal_precision_at_k(rel, k), abs=1e-12)
        assert retrieval_map_at_k(rel, num, k) == pytest.approx(_literal_map_at_k(rel, num, k), abs=1e-12)


def test_retrieval_metrics_by_hand():
    from vidsage_core.metrics import retrieval_map_at_k, retrieval_precision_at_k

    rel = np.array([[1, 0, 1, 0], [0, 0, 0, 0], [0, 1, 1, 1]], dtype=bool)
    # P@2: 1/2, 0, 1/2 -> 1/3
    assert retrieval_precision_at_k(rel, 2) == pytest.approx(1 / 3)
    # AP@4 with R = 2, 0, 5: (1 + 2/3) / 2; 0; (1/2 + 2/3 + 3/4) / min(5, 4)
    expected = ((1 + 2 / 3) / 2 + 0 + (1 / 2 + 2 / 3 + 3 / 4) / 4) / 3
    assert retrieval_map_at_k(rel, [2, 0, 5], 4) == pytest.approx(expected)
    # a perfect ranking scores 1 even when R > k
    assert retrieval_map_at_k(np.ones((1, 4), bool), [9], 4) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="num_relevant is smaller"):
        retrieval_map_at_k(rel, [1, 0, 5], 4)
