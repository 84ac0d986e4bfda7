"""Multi-label video classification metrics: YouTube-8M's and the paper's.

Every function takes ``scores`` (float ``[N, C]``, dense numpy; larger is more confident) and
``labels`` (0/1 ``[N, C]``, dense numpy or any ``scipy.sparse`` matrix; an entry ``> 0`` is a
positive, as in YouTube-8M's ``actuals > 0``). Sparse labels are never densified: positives are
looked up by their flat ``row * C + col`` key, so memory stays ``O(nnz)`` beside the scores.

YouTube-8M metrics (names and meanings of the starter code's ``eval_util.EvaluationMetrics``,
``average_precision_calculator`` and ``mean_average_precision_calculator``):

* :func:`gap` -- Global Average Precision: each video's ``top_k`` predictions are pooled, sorted
  by score, and one non-interpolated AP is taken over the pool with the denominator set to the
  total number of positives in ``labels`` (also those that fell outside every top-k list).
* :func:`hit_at_one` -- fraction of videos whose arg-max class is a positive.
* :func:`perr` -- precision at equal recall rate: per video with ``k`` positives, the precision
  of its top ``k`` predictions, averaged over *all* videos.
* :func:`map_at_top_k` -- per-class AP over the pooled top-``k`` predictions, each class's
  denominator being its number of positives; classes without positives dropped; mean.

The paper's metrics (§4.1) and plain references:

* :func:`bucketed_map` -- the paper's bucketed (threshold-interpolated) AP per class, averaged.
* :func:`mean_ap` -- exact per-class AP (scikit-learn's ``average_precision_score``), averaged
  over classes with at least one positive.
* :func:`top_k_accuracy` -- fraction of videos with any positive among their top ``k``.

Retrieval metrics (beyond the paper; a representation's own measure): each query video has a
ranked list of database videos and a 0/1 relevance per hit (here: the two share a label).

* :func:`retrieval_precision_at_k` -- mean share of relevant videos among the first ``k`` hits.
* :func:`retrieval_map_at_k` -- mean over queries of AP@k with denominator ``min(R, k)``,
  ``R`` = the query's relevant videos in the whole database.

Ties. All rankings use one total order: score descending, then class index ascending (so a
video's top-k is deterministic even with tied scores at the k-th place; ``hit_at_one`` matches
``numpy.argmax``, which also keeps the first maximum). Inside an AP, a run of tied scores is one
threshold, as in scikit-learn: every item of the run gets the precision measured at the end of
the run, so the AP does not depend on the order of tied items. YouTube-8M instead shuffles the
pooled list with ``random.seed(0)`` before a stable sort, i.e. it breaks ties at random; on
tie-free scores both give identical numbers (the tests check this against a literal loop
implementation), on tied scores they can differ in the last digits.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp

__all__ = [
    "gap",
    "hit_at_one",
    "perr",
    "map_at_top_k",
    "bucketed_map",
    "mean_ap",
    "top_k_accuracy",
    "all_metrics",
    "retrieval_precision_at_k",
    "retrieval_map_at_k",
    "METRIC_KEYS",
]

# Keys of all_metrics(), in the order tables print them.
METRIC_KEYS = ("gap", "hit_at_one", "perr", "map", "mean_ap", "bucketed_map", "top1", "top5")


# --------------------------------------------------------------------------- input handling
class _Positives:
    """The positive (row, col) cells of a label matrix as sorted flat keys ``row * C + col``.

    One representation for dense and sparse labels keeps every metric on the same code path and
    lets sparse labels stay sparse.
    """

    def __init__(self, labels: Any, shape: tuple[int, int]) -> None:
        n, c = shape
        if sp.issparse(labels):
            if labels.shape != shape:
                raise ValueError(f"labels has shape {labels.shape}, scores has shape {shape}")
            coo = sp.coo_matrix(labels)
            keep = coo.data > 0  # explicit zeros and negatives are not positives
            rows, cols = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64)
        else:
            dense = np.asarray(labels)
            if dense.shape != shape:
                raise ValueError(f"labels has shape {dense.shape}, scores has shape {shape}")
            rows, cols = np.nonzero(dense > 0)
            rows, cols = rows.astype(np.int64), cols.astype(np.int64)
        keys = np.unique(rows * c + cols)  # sorted, duplicates (unsummed COO) merged
        self.num_classes = c
        self.keys = keys
        self.rows = keys // c
        self.cols = keys % c
        self.per_row = np.bincount(self.rows, minlength=n)  # positives per video
        self.per_col = np.bincount(self.cols, minlength=c)  # positives per class

    def lookup(self, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Return bool array: whether each (rows[i], cols[i]) is a positive."""
        query = rows.astype(np.int64) * self.num_classes + cols.astype(np.int64)
        if self.keys.size == 0:
            return np.zeros(query.shape, dtype=bool)
        pos = np.searchsorted(self.keys, query)
        pos = np.minimum(pos, self.keys.size - 1)
        return self.keys[pos] == query


def _check_scores(scores: Any) -> np.ndarray:
    scores = np.asarray(scores)
    if scores.ndim != 2:
        raise ValueError(f"scores must be 2-D [N, C], got shape {scores.shape}")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores contains NaN")
    return scores


def _check_k(k: Any, name: str = "k") -> int:
    if int(k) != k or int(k) <= 0:
        raise ValueError(f"{name}: k must be a positive integer, got {k!r}")
    return int(k)


def _prepare(scores: Any, labels: Any) -> tuple[np.ndarray, _Positives]:
    scores = _check_scores(scores)
    if scores.shape[0] == 0:
        raise ValueError("scores has no rows (N = 0)")
    return scores, _Positives(labels, scores.shape)


def _top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Column indices of each row's ``k`` best scores, best first.

    Order: score descending, then class index ascending (deterministic with ties).

    Args:
        scores: float [N, C].
        k: 1 <= k; clipped to C.

    Returns:
        int64 [N, min(k, C)].
    """
    n, c = scores.shape
    k = min(_check_k(k), c)
    if k == c:
        cols = np.argsort(-scores, axis=1, kind="stable")
        return cols.astype(np.int64)
    cols = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    kth = np.take_along_axis(scores, cols, axis=1).min(axis=1)
    # argpartition picks arbitrarily among scores tied at the k-th place; only rows where more
    # than k scores reach the k-th value are ambiguous, and those are re-selected by class index.
    ambiguous = np.flatnonzero((scores >= kth[:, None]).sum(axis=1) > k)
    if ambiguous.size:
        sub = scores[ambiguous]
        t = kth[ambiguous][:, None]
        greater = sub > t
        equal = sub == t
        need = k - greater.sum(axis=1)
        take = greater | (equal & (np.cumsum(equal, axis=1, dtype=np.int32) <= need[:, None]))
        cols[ambiguous] = np.nonzero(take)[1].reshape(-1, k)  # row-major: ascending class
    cols = np.sort(cols, axis=1)  # ascending class, so the stable sort below breaks ties by class
    order = np.argsort(-np.take_along_axis(scores, cols, axis=1), axis=1, kind="stable")
    return np.take_along_axis(cols, order, axis=1).astype(np.int64)


def _grouped_ap_sum(
    sorted_scores: np.ndarray, sorted_hits: np.ndarray, group: np.ndarray | None = None
) -> np.ndarray | float:
    """Sum of precision-at-run-end over the positives of ranked lists (AP numerator).

    The lists are concatenated; ``group`` (non-decreasing ints, one per item) says which list an
    item belongs to, and within a list items are sorted by score descending. A run of equal
    scores inside a list is one threshold: its positives all get the precision at its last item.

    Args:
        sorted_scores: float [M].
        sorted_hits: bool [M].
        group: int [M] list id per item, or None for a single list.

    Returns:
        float per list id (array of length max(group) + 1), or a float when ``group`` is None.
    """
    m = sorted_scores.size
    single = group is None
    if m == 0:
        return 0.0 if single else np.zeros(0)
    if single:
        group = np.zeros(m, dtype=np.int64)
    # Rank inside each list (1-based) and cumulative true positives inside each list.
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
    start_of_item = np.repeat(starts, np.diff(np.r_[starts, m]))
    rank = np.arange(m) - start_of_item + 1
    cum = np.cumsum(sorted_hits, dtype=np.int64)
    before = np.r_[0, cum][start_of_item]  # hits before the list started
    cum_in_list = cum - before
    # Index of the last item of each item's tie run (a run never crosses a list boundary).
    run_end = np.r_[(sorted_scores[1:] != sorted_scores[:-1]) | (group[1:] != group[:-1]), True]
    end_idx = np.where(run_end, np.arange(m), m)
    end_idx = np.minimum.accumulate(end_idx[::-1])[::-1]
    precision = cum_in_list[end_idx] / rank[end_idx]
    contrib = np.where(sorted_hits, precision, 0.0)
    if single:
        return float(contrib.sum())
    return np.bincount(group, weights=contrib, minlength=int(group[-1]) + 1)


def _pooled_top_k(
    scores: np.ndarray, pos: _Positives, top_k: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Each video's top_k predictions, pooled: (class, score, is_positive), each [N * k]."""
    cols = _top_k(scores, top_k)
    rows = np.repeat(np.arange(scores.shape[0]), cols.shape[1])
    cols = cols.ravel()
    return cols, scores[rows, cols], pos.lookup(rows, cols)


# --------------------------------------------------------------------------- YouTube-8M
def gap(scores: Any, labels: Any, top_k: int = 20) -> float:
    """YouTube-8M Global Average Precision over each video's ``top_k`` predictions.

    ``GAP = (1 / P) * sum_i p(i) * rel(i)`` over the pooled list of all videos' top-k
    predictions sorted by score, where ``p(i)`` is the precision of the first ``i`` items,
    ``rel(i)`` whether item ``i`` is a positive and ``P`` the number of positives in ``labels``
    (not only those inside the pooled list), as in ``eval_util.calculate_gap``.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.
        top_k: predictions kept per video (YouTube-8M: 20); clipped to C.

    Returns:
        GAP in [0, 1]; 0.0 when ``labels`` has no positive (YouTube-8M returns 0 then).
    """
    top_k = _check_k(top_k, "top_k")
    scores, pos = _prepare(scores, labels)
    total_positives = pos.keys.size
    if total_positives == 0:
        return 0.0
    _, values, hits = _pooled_top_k(scores, pos, top_k)
    order = np.argsort(-values, kind="stable")
    return float(_grouped_ap_sum(values[order], hits[order])) / total_positives


def hit_at_one(scores: Any, labels: Any) -> float:
    """Fraction of videos whose top-1 prediction is a positive (``calculate_hit_at_one``).

    The top-1 is ``argmax`` (first class among tied maxima). Videos without labels count as
    misses, as in YouTube-8M's plain average over the batch.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.

    Returns:
        Hit@1 in [0, 1].
    """
    scores, pos = _prepare(scores, labels)
    top = np.argmax(scores, axis=1)
    return float(pos.lookup(np.arange(scores.shape[0]), top).mean())


def perr(scores: Any, labels: Any) -> float:
    """Precision at equal recall rate (``calculate_precision_at_equal_recall_rate``).

    For a video with ``k`` positives, its precision is the number of positives among its top
    ``k`` predictions divided by ``k``. As in YouTube-8M: a prediction counts only if its score
    is ``> 0``, and the mean is over *all* N videos, a video without positives contributing 0
    (there ``argpartition(.., -0)[-0:]`` selects every class and none is a positive).

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.

    Returns:
        PERR in [0, 1].
    """
    scores, pos = _prepare(scores, labels)
    n = scores.shape[0]
    k_per_row = pos.per_row
    k_max = int(k_per_row.max()) if n else 0
    if k_max == 0:
        return 0.0
    cols = _top_k(scores, k_max)  # [N, k_max], best first
    rows = np.repeat(np.arange(n), cols.shape[1]).reshape(cols.shape)
    hit = pos.lookup(rows.ravel(), cols.ravel()).reshape(cols.shape)
    hit &= np.take_along_axis(scores, cols, axis=1) > 0
    within = np.arange(cols.shape[1])[None, :] < k_per_row[:, None]
    hits = (hit & within).sum(axis=1)
    has = k_per_row > 0
    precision = np.zeros(n)
    precision[has] = hits[has] / k_per_row[has]
    return float(precision.mean())


def map_at_top_k(
    scores: Any, labels: Any, top_k: int = 20, drop_empty_classes: bool = True
) -> float:
    """YouTube-8M's ``map``: per-class AP over the pooled top-``k`` predictions, averaged.

    Only each video's ``top_k`` predictions are kept (the rest are removed); they are split by
    class, and class ``c``'s AP is the non-interpolated AP of its kept predictions with the
    denominator set to all of its positives in ``labels``. A class with positives but no kept
    prediction has AP 0.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.
        top_k: predictions kept per video (YouTube-8M: 20).
        drop_empty_classes: True (default) averages over classes with at least one positive,
            as google/youtube-8m's ``MeanAveragePrecisionCalculator(filter_empty_classes=True)``
            followed by ``numpy.mean``; False divides the sum by C (the TF Model Garden port's
            ``sum(aps) / num_class``).

    Returns:
        mAP in [0, 1]; 0.0 when no class has a positive and ``drop_empty_classes`` is True.
    """
    scores, pos = _prepare(scores, labels)
    c = scores.shape[1]
    cols, values, hits = _pooled_top_k(scores, pos, top_k)
    order = np.lexsort((-values, cols))  # by class, then score descending
    numerators = np.zeros(c)
    sums = _grouped_ap_sum(values[order], hits[order], cols[order])
    numerators[: len(sums)] = sums
    has = pos.per_col > 0
    aps = np.zeros(c)
    aps[has] = numerators[has] / pos.per_col[has]
    if drop_empty_classes:
        return float(aps[has].mean()) if has.any() else 0.0
    return float(aps.sum() / c)


# --------------------------------------------------------------------------- paper / references
def bucketed_map(scores: Any, labels: Any, num_buckets: int = 1000) -> float:
    """The paper's bucketed mean average precision (§4.1).

    Per class, scores are cut at equal-width thresholds ``tau_j = (j - 1) / D`` for
    ``j = 1..D`` (``D = num_buckets``) and ``tau_{D+1} = 1``. With
    ``P(tau) = #{positive, score > tau} / #{score > tau}`` and
    ``R(tau) = #{positive, score > tau} / #{positive}``,
    ``AP = sum_j P(tau_j) * [R(tau_j) - R(tau_{j+1})]``: the recall gained inside bucket
    ``(tau_j, tau_{j+1}]`` is weighted by the precision of everything above the bucket's lower
    edge. The same construction as the early YouTube-8M ``interpolated_ap`` (whose default was
    1000 points, hence ``num_buckets=1000``). As ``D`` grows the value tends to the exact AP
    (:func:`mean_ap`); it is exactly equal once no bucket holds two scores of one class.

    Conventions (the paper leaves them open): scores must lie in [0, 1] (probabilities); if any
    lies outside, all scores are min-max rescaled to [0, 1] together (monotone, so rankings are
    kept), as YouTube-8M's ``_zero_one_normalize`` did. A score equal to 0 is never above a
    threshold, so it is never retrieved (the strict ``>`` of the paper's formula). Classes
    without positives have no recall and are dropped from the mean, i.e. the paper's ``C`` is
    read as the number of classes with at least one positive.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.
        num_buckets: D, number of equal-width buckets on [0, 1].

    Returns:
        Bucketed mAP in [0, 1]; 0.0 when no class has a positive.
    """
    if int(num_buckets) <= 0:
        raise ValueError(f"num_buckets must be a positive integer, got {num_buckets}")
    d = int(num_buckets)
    scores, pos = _prepare(scores, labels)
    lo, hi = float(scores.min()), float(scores.max())
    if lo < 0.0 or hi > 1.0:
        scores = (scores - lo) / max(hi - lo, 1e-12)
    classes = np.flatnonzero(pos.per_col > 0)
    if classes.size == 0:
        return 0.0
    taus = np.arange(d, dtype=np.float64) / d  # tau_1..tau_D; tau_{D+1} = 1 is the ceiling
    # bucket(s) = number of thresholds strictly below s: 0 (s == 0, never retrieved) .. D.
    remap = np.full(scores.shape[1], -1, dtype=np.int64)
    remap[classes] = np.arange(classes.size)
    n_cls = classes.size
    counts = np.zeros(n_cls * (d + 1), dtype=np.int64)
    chunk = max(1, 4_000_000 // max(classes.size, 1))  # bound the temporary bucket-index array
    for start in range(0, scores.shape[0], chunk):
        block = scores[start : start + chunk][:, classes]
        b = np.searchsorted(taus, block, side="left")
        counts += np.bincount(
            (np.arange(n_cls)[None, :] * (d + 1) + b).ravel(), minlength=n_cls * (d + 1)
        )
    counts = counts.reshape(n_cls, d + 1)
    pos_scores = scores[pos.rows, pos.cols]
    pos_b = np.searchsorted(taus, pos_scores, side="left")
    positives = np.zeros((n_cls, d + 1), dtype=np.int64)
    np.add.at(positives, (remap[pos.cols], pos_b), 1)
    # Items above tau_j = those in buckets j..D (suffix sums); bucket 0 is never above any tau.
    above = np.cumsum(counts[:, ::-1], axis=1)[:, ::-1][:, 1:]
    pos_above = np.cumsum(positives[:, ::-1], axis=1)[:, ::-1][:, 1:]
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = np.where(above > 0, pos_above / np.maximum(above, 1), 0.0)
    recall_gain = positives[:, 1:] / pos.per_col[classes][:, None]
    aps = (precision * recall_gain).sum(axis=1)
    return float(aps.mean())


def mean_ap(scores: Any, labels: Any, chunk_classes: int = 256) -> float:
    """Exact per-class AP over all N videos (= scikit-learn ``average_precision_score``), mean.

    ``AP_c = sum_n (R_n - R_{n-1}) P_n`` over the distinct score thresholds of class ``c``;
    classes without positives are dropped from the mean (their AP is undefined).

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.
        chunk_classes: classes ranked at once (bounds the dense [N, chunk] temporaries).

    Returns:
        Mean AP in [0, 1]; 0.0 when no class has a positive.
    """
    scores, pos = _prepare(scores, labels)
    n = scores.shape[0]
    classes = np.flatnonzero(pos.per_col > 0)
    if classes.size == 0:
        return 0.0
    total = 0.0
    for start in range(0, classes.size, chunk_classes):
        cls = classes[start : start + chunk_classes]
        block = scores[:, cls]  # [N, b]
        order = np.argsort(-block, axis=0, kind="stable")
        # Flatten class-major so each class is one contiguous ranked list for _grouped_ap_sum.
        ranked_rows = order.T.ravel()
        ranked_cls = np.repeat(cls, n)
        values = np.take_along_axis(block, order, axis=0).T.ravel()
        hits = pos.lookup(ranked_rows, ranked_cls)
        group = np.repeat(np.arange(cls.size), n)
        sums = _grouped_ap_sum(values, hits, group)
        total += float((sums / pos.per_col[cls]).sum())
    return total / classes.size


def top_k_accuracy(scores: Any, labels: Any, k: int = 1) -> float:
    """Fraction of videos with at least one positive among their top ``k`` predictions.

    For single-label data this is the usual top-k accuracy; ``k = 1`` equals :func:`hit_at_one`.
    Videos without labels count as misses.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.
        k: number of top predictions looked at; clipped to C.

    Returns:
        Top-k accuracy in [0, 1].
    """
    scores, pos = _prepare(scores, labels)
    cols = _top_k(scores, k)
    rows = np.repeat(np.arange(scores.shape[0]), cols.shape[1])
    hit = pos.lookup(rows, cols.ravel()).reshape(cols.shape)
    return float(hit.any(axis=1).mean())


def all_metrics(scores: Any, labels: Any) -> dict[str, float]:
    """Every metric at its default settings.

    Args:
        scores: float [N, C].
        labels: 0/1 [N, C], dense or scipy sparse.

    Returns:
        ``{"gap", "hit_at_one", "perr", "map", "mean_ap", "bucketed_map", "top1", "top5"}``:
        GAP@20, hit@1, PERR, YouTube-8M top-20 mAP, exact mAP, the paper's bucketed mAP
        (1000 buckets), top-1 and top-5 accuracy.
    """
    scores = _check_scores(scores)
    if sp.issparse(labels):
        labels = sp.csr_matrix(labels)  # convert once, not per metric
    return {
        "gap": gap(scores, labels, top_k=20),
        "hit_at_one": hit_at_one(scores, labels),
        "perr": perr(scores, labels),
        "map": map_at_top_k(scores, labels, top_k=20),
        "mean_ap": mean_ap(scores, labels),
        "bucketed_map": bucketed_map(scores, labels),
        "top1": top_k_accuracy(scores, labels, 1),
        "top5": top_k_accuracy(scores, labels, 5),
    }


# --------------------------------------------------------------------------- retrieval
def _check_relevance(relevant: Any, k: Any) -> tuple[np.ndarray, int]:
    rel = np.asarray(relevant)
    if rel.ndim != 2:
        raise ValueError(f"relevant must be [Q, K] (rank order), got shape {rel.shape}")
    k = _check_k(k)
    return rel[:, :k] > 0, k


def retrieval_precision_at_k(relevant: Any, k: int = 10) -> float:
    """Mean over queries of (relevant hits among the first ``k``) / ``k``.

    Args:
        relevant: 0/1 ``[Q, K]``, hit ``j`` of query ``q`` in rank order (best first). When a
            query has fewer than ``k`` hits (database smaller than ``k``) the missing ones count
            as not relevant: the denominator is always ``k``.
        k: cut-off.

    Returns:
        Precision@k in [0, 1]; 0.0 for zero queries.
    """
    rel, k = _check_relevance(relevant, k)
    if rel.shape[0] == 0:
        return 0.0
    return float(rel.sum(axis=1).mean() / k)


def retrieval_map_at_k(relevant: Any, num_relevant: Any, k: int = 100) -> float:
    """Mean over queries of AP@k: ``sum_{i<=k} P@i * rel_i / min(R_q, k)``.

    ``P@i`` is the precision of the first ``i`` hits and ``R_q`` the number of relevant videos
    of query ``q`` in the whole database, so a perfect ranking scores 1 also when ``R_q > k``.
    A query with ``R_q = 0`` scores 0 (it cannot be answered; it still counts in the mean).

    Args:
        relevant: 0/1 ``[Q, K]`` relevance of the hits in rank order (``K >= k`` or the whole
            database).
        num_relevant: int ``[Q]``, ``R_q``; must be at least the relevant hits listed.
        k: cut-off.

    Returns:
        mAP@k in [0, 1]; 0.0 for zero queries.
    """
    rel, k = _check_relevance(relevant, k)
    r = np.asarray(num_relevant, dtype=np.int64).ravel()
    if r.shape[0] != rel.shape[0]:
        raise ValueError(f"num_relevant has {r.shape[0]} entries for {rel.shape[0]} queries")
    hits = rel.sum(axis=1)
    if np.any(hits > r):
        raise ValueError("num_relevant is smaller than the relevant hits listed for some query")
    if rel.shape[0] == 0:
        return 0.0
    ranks = np.arange(1, rel.shape[1] + 1)
    precision = np.cumsum(rel, axis=1) / ranks  # P@i at every rank
    ap_sum = (precision * rel).sum(axis=1)
    denom = np.minimum(r, k)
    return float(np.where(denom > 0, ap_sum / np.maximum(denom, 1), 0.0).mean())
