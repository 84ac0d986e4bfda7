"""Non-learned and decoupled graph baselines: smoothing, SIGN, label propagation, Correct & Smooth.

A learned GNN earns its place only by beating these. All of them use one graph, the k nearest
train+val videos of every video (:func:`knn_neighbours`, computed once per run and shared), and
all are *inductive* exactly like the GNN rows:

* a train+val video's neighbours are other train+val videos; a test video's neighbours are its
  k nearest train+val videos. Test videos receive messages and never send any, so nothing
  computed for a train+val video depends on a test video's features;
* labels are read only for the labelled train+val rows given (a nested subset at label fraction
  f < 1); test labels are never an input.

``A`` below is the row-normalised adjacency of that graph: ``(A h)_i`` is the mean of ``h`` over
the valid neighbours of video ``i``. Because every train+val video also has ``k`` incoming edges
from train+val videos, it equals PyG's symmetric ``D^-1/2 A D^-1/2`` on exact kNN graphs; we pass
the row-normalised weights explicitly so that both operators are the same everywhere.

* :func:`sgc_features` -- ``[x, ½x + ½Ax]``, the smoothing baseline of Table 2.
* :func:`sign_features` -- ``[x, Ax, A²x, ...]`` (SIGN, Frasca et al. 2020), the input of a head
  from :mod:`vidsage_core.evaluate`.
* :func:`label_propagation` -- PyG's ``LabelPropagation`` of the labelled rows' labels.
* :func:`correct_and_smooth` -- PyG's ``CorrectAndSmooth`` (Huang et al., ICLR 2021) on top of a
  base head's probabilities.

Multi-label YouTube-8M labels are propagated as a ``[N + M, C_seen]`` dense float32 matrix over
the classes with a labelled positive (others score 0, as in ``evaluate.predict``): ~0.2 GB at the
embedded 14k videos and 2.8k classes, so this module is for sample-size runs, not millions.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import torch

__all__ = [
    "Neighbours",
    "PropagationConfig",
    "knn_neighbours",
    "neighbour_mean",
    "sgc_features",
    "sign_features",
    "propagation_graph",
    "label_propagation",
    "correct_and_smooth",
]


@dataclass(frozen=True)
class Neighbours:
    """The shared kNN graph: each row's nearest train+val videos (indices into train+val)."""

    trainval: np.ndarray  # int64 [N, k]; a train+val video is never its own neighbour; -1: none
    test: np.ndarray  # int64 [M, k]; -1: none

    @property
    def num_trainval(self) -> int:
        return int(self.trainval.shape[0])

    @property
    def num_test(self) -> int:
        return int(self.test.shape[0])


@dataclass(frozen=True)
class PropagationConfig:
    """Settings of label propagation and Correct & Smooth, chosen on the validation bucket.

    Measured on the real 13,998-video sample (rgb+audio, L2-normalised, k = 25): labels of the
    train bucket (8,383 videos) only, scored on the validation bucket (hash bucket 1, 2,798
    videos); the test bucket was not looked at. Base predictions: the logistic head
    (``evaluate.HeadConfig`` defaults) on the raw features, validation GAP 0.6325. Numbers below
    are validation GAP.

    * label propagation: see ``lp_*`` below;
    * Correct & Smooth: see ``cs_*`` below.
    """

    # Label propagation (layers, alpha): (1, any alpha: one step only rescales the unlabelled
    # rows) 0.5719; (2, 0.9) 0.5358; (3, 0.9) 0.5098; (2, 0.5) 0.5657; (3, 0.5) 0.5612;
    # (2, 0.99) 0.5275; (2, 0.2) 0.5789. Labels alone, without the video's own features, stay
    # far below a head on x.
    lp_layers: int = 2
    lp_alpha: float = 0.2
    # Correct & Smooth (correction layers, alpha; smoothing layers, alpha): (2, .5; 2, .5)
    # 0.6309; (0; 2, .5) 0.6311; (2, .9; 2, .5) 0.6309; (2, .5; 2, .7) 0.6094; (3, .5; 3, .5)
    # 0.6297; (2, .5; 1, .5) 0.6359; (2, .5; 2, .3) 0.6397; (2, .5; 2, .2) 0.6410; (2, .5; 2, .1)
    # 0.6407; (0; 2, .3) 0.6405; (1, .5; 1, .3) 0.6389; (2, .5; 3, .3) 0.6395; (2, .9; 2, .3)
    # 0.6409; (2, .5; 1, .3) 0.6411, the best (+0.0086 over the base head): a light smoothing
    # step (with or without the correction step: within 0.001).
    cs_correction_layers: int = 2
    cs_correction_alpha: float = 0.5
    cs_smoothing_layers: int = 1
    cs_smoothing_alpha: float = 0.3
    # PyG's autoscale: the propagated residual is rescaled to the mean residual size on the
    # labelled rows (the C&S paper's "autoscale" variant).
    cs_autoscale: bool = True


def knn_neighbours(x_trainval: np.ndarray, x_test: np.ndarray, k: int = 25, device: str = "auto",
                   mode: str = "exact") -> Neighbours:
    """The k nearest train+val videos of every train+val video (self excluded) and test video.

    Args:
        x_trainval: float32 ``[N, D]``.
        x_test: float32 ``[M, D]``.
        k: neighbours (capped at N - 1 for tiny sets).
        device: for the search ("auto", "cpu", "cuda").
        mode: ``knn.knn`` mode ("exact", "ivf-gemm", "ivf", "hnsw").

    Returns:
        :class:`Neighbours` with int64 ``[N, k]`` and ``[M, k]`` indices into train+val.
    """
    from vidsage_core.graph import knn

    if len(x_trainval) < 2:
        raise ValueError(f"knn_neighbours: need >= 2 train+val videos, got {len(x_trainval)}")
    k = min(k, len(x_trainval) - 1)
    _, idx_tv = knn(x_trainval, k, mode=mode, device=device)
    _, idx_te = knn(x_trainval, k, queries=x_test, exclude_self=False, mode=mode, device=device)
    return Neighbours(idx_tv.astype(np.int64), idx_te.astype(np.int64))


def neighbour_mean(h_trainval: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``A h`` for the rows whose neighbours are ``idx``: the mean of ``h`` over valid neighbours.

    Args:
        h_trainval: float ``[N, D]`` values of the train+val videos (the only senders).
        idx: int ``[R, k]`` neighbour indices into train+val, -1 for none.

    Returns:
        float32 ``[R, D]``; a row without any valid neighbour gets zeros.
    """
    valid = idx >= 0
    out = np.zeros((idx.shape[0], h_trainval.shape[1]), dtype=np.float32)
    for j in range(idx.shape[1]):  # k passes of [R, D]: never materialises [R, k, D]
        rows = np.flatnonzero(valid[:, j])
        out[rows] += h_trainval[idx[rows, j]]
    return out / np.maximum(valid.sum(1, keepdims=True), 1).astype(np.float32)


def sgc_features(x_trainval: np.ndarray, x_test: np.ndarray, k: int = 25, device: str = "auto",
                 mode: str = "exact", neighbours: Neighbours | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
    """The non-learned smoothing baseline: ``[x, ½x + ½·Ax]`` (A: mean over k nearest videos).

    Args:
        x_trainval, x_test: float32 ``[N, D]`` and ``[M, D]``.
        k, device, mode: for :func:`knn_neighbours` when ``neighbours`` is not given.
        neighbours: the run's shared kNN graph.

    Returns:
        float32 ``[N, 2D]`` for train+val and ``[M, 2D]`` for test.
    """
    nb = neighbours or knn_neighbours(x_trainval, x_test, k, device, mode)

    def smooth(x: np.ndarray, idx: np.ndarray) -> np.ndarray:
        mean = neighbour_mean(x_trainval, idx)
        return np.concatenate([x, 0.5 * x + 0.5 * mean], axis=1).astype(np.float32)

    return smooth(x_trainval, nb.trainval), smooth(x_test, nb.test)


def sign_features(x_trainval: np.ndarray, x_test: np.ndarray, neighbours: Neighbours,
                  hops: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """SIGN inputs ``[x, Ax, ..., A^hops x]``, propagated over train+val videos only.

    ``(A^h x)`` of a test video is the mean of the train+val videos' ``A^(h-1) x`` over its own
    neighbours, so test videos never feed anyone's features.

    Args:
        x_trainval, x_test: float32 ``[N, D]`` and ``[M, D]``.
        neighbours: the shared kNN graph.
        hops: propagation steps (2: ``[x, Ax, A²x]``, the issue's SIGN head).

    Returns:
        float32 ``[N, (hops + 1) D]`` and ``[M, (hops + 1) D]``.
    """
    blocks_tv, blocks_te = [np.asarray(x_trainval, np.float32)], [np.asarray(x_test, np.float32)]
    for _ in range(hops):
        prev = blocks_tv[-1]
        blocks_tv.append(neighbour_mean(prev, neighbours.trainval))
        blocks_te.append(neighbour_mean(prev, neighbours.test))
    return np.concatenate(blocks_tv, 1), np.concatenate(blocks_te, 1)


def propagation_graph(neighbours: Neighbours) -> torch.Tensor:
    """The kNN graph as a sparse ``A`` over train+val then test nodes (PyG's ``adj_t`` layout).

    Nodes ``0..N-1`` are the train+val videos, ``N..N+M-1`` the test videos. Row ``i`` holds
    ``1/deg_i`` at the columns of video ``i``'s neighbours (always train+val nodes), so
    ``A @ h`` is one propagation step and no test node ever sends.

    A sparse matrix rather than ``edge_index``: PyG then aggregates with one sparse-dense
    product instead of materialising an ``[E, C]`` message tensor (``E = 25 (N + M)`` edges times
    ~2.8k classes would be ~4 GB at the embedded 14k videos).

    Returns:
        float32 sparse CSR ``[N + M, N + M]`` (row = receiver, column = sender).
    """
    idx = np.concatenate([neighbours.trainval, neighbours.test], 0)
    valid = idx >= 0
    n = idx.shape[0]
    deg = valid.sum(1)
    target = np.repeat(np.arange(n), deg)
    source = idx[valid]
    weight = (1.0 / np.maximum(deg, 1))[target].astype(np.float32)
    with warnings.catch_warnings():  # torch flags CSR support as "beta"; spmm is all we use
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([target, source]).astype(np.int64)), torch.from_numpy(weight),
            (n, n), check_invariants=False).coalesce().to_sparse_csr()


def _labelled_block(y_trainval: sp.spmatrix, labelled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Classes with a labelled positive, and the labelled rows' dense 0/1 labels over them."""
    y_lab = sp.csr_matrix(y_trainval)[labelled]
    y_lab.data = (y_lab.data > 0).astype(np.float32)
    classes = np.flatnonzero(np.asarray(y_lab.sum(0)).ravel() > 0)
    return classes, y_lab[:, classes].toarray().astype(np.float32)


def _check_rows(y_trainval: sp.spmatrix, labelled: np.ndarray, neighbours: Neighbours) -> np.ndarray:
    labelled = np.asarray(labelled, dtype=np.int64)
    if y_trainval.shape[0] != neighbours.num_trainval:
        raise ValueError(f"labels have {y_trainval.shape[0]} rows; the graph has "
                         f"{neighbours.num_trainval} train+val videos")
    if labelled.size == 0 or labelled.min() < 0 or labelled.max() >= neighbours.num_trainval:
        raise ValueError("labelled rows must be a non-empty subset of the train+val rows "
                         f"[0, {neighbours.num_trainval})")
    return labelled


def _scatter(block: torch.Tensor, classes: np.ndarray, num_classes: int, n_tv: int
             ) -> tuple[np.ndarray, np.ndarray]:
    full = np.zeros((block.shape[0], num_classes), dtype=np.float32)
    full[:, classes] = block.numpy()
    return full[:n_tv], full[n_tv:]


def label_propagation(y_trainval: sp.spmatrix, labelled: np.ndarray, neighbours: Neighbours,
                      config: PropagationConfig = PropagationConfig()
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Scores from the labelled videos' labels alone, spread over the kNN graph.

    ``Y <- alpha·A·Y + (1 - alpha)·Y0`` for ``lp_layers`` steps, clamped to [0, 1], with ``Y0``
    the labels on labelled rows and 0 elsewhere (PyG ``LabelPropagation``).

    Args:
        y_trainval: 0/1 ``[N, C]`` labels of the train+val videos (sparse); only rows in
            ``labelled`` are read.
        labelled: int ``[L]`` rows of train+val whose labels may be used.
        neighbours: the shared kNN graph.
        config: layers and alpha.

    Returns:
        float32 scores ``[N, C]`` (train+val) and ``[M, C]`` (test); classes without a labelled
        positive score 0.
    """
    from torch_geometric.nn.models import LabelPropagation

    labelled = _check_rows(y_trainval, labelled, neighbours)
    classes, y_lab = _labelled_block(y_trainval, labelled)
    n_tv, n = neighbours.num_trainval, neighbours.num_trainval + neighbours.num_test
    y0 = torch.zeros((n, classes.size), dtype=torch.float32)
    y0[torch.from_numpy(labelled)] = torch.from_numpy(y_lab)
    adj = propagation_graph(neighbours)
    lp = LabelPropagation(config.lp_layers, config.lp_alpha)
    # PyG multiplies by the sparse matrix's own values; edge_weight is passed only so that it
    # does not replace them by its symmetric gcn_norm.
    out = lp(y0, adj, edge_weight=adj.values())
    return _scatter(out, classes, y_trainval.shape[1], n_tv)


def correct_and_smooth(scores_trainval: np.ndarray, scores_test: np.ndarray,
                       y_trainval: sp.spmatrix, labelled: np.ndarray, neighbours: Neighbours,
                       config: PropagationConfig = PropagationConfig()
                       ) -> tuple[np.ndarray, np.ndarray]:
    """Correct & Smooth (Huang et al., ICLR 2021) on a base head's probabilities (PyG).

    *Correct*: the residual ``Y - Z`` on labelled rows is propagated and added to ``Z``
    (autoscaled); *smooth*: labelled rows are reset to their labels and the result propagated.

    Args:
        scores_trainval: float ``[N, C]`` base probabilities of the train+val videos.
        scores_test: float ``[M, C]`` base probabilities of the test videos.
        y_trainval: 0/1 ``[N, C]`` labels (sparse); only rows in ``labelled`` are read.
        labelled: int ``[L]`` rows of train+val whose labels may be used.
        neighbours: the shared kNN graph.
        config: layers and alphas of both steps.

    Returns:
        float32 ``[N, C]`` and ``[M, C]``; classes without a labelled positive keep score 0.
    """
    from torch_geometric.nn.models import CorrectAndSmooth

    labelled = _check_rows(y_trainval, labelled, neighbours)
    if scores_trainval.shape[0] != neighbours.num_trainval or \
            scores_test.shape[0] != neighbours.num_test:
        raise ValueError(f"base scores have {scores_trainval.shape[0]}/{scores_test.shape[0]} "
                         f"rows; the graph has {neighbours.num_trainval}/{neighbours.num_test}")
    classes, y_lab = _labelled_block(y_trainval, labelled)
    z = torch.from_numpy(np.concatenate([scores_trainval[:, classes], scores_test[:, classes]],
                                        0).astype(np.float32))
    adj = propagation_graph(neighbours)
    cs = CorrectAndSmooth(config.cs_correction_layers, config.cs_correction_alpha,
                          config.cs_smoothing_layers, config.cs_smoothing_alpha,
                          autoscale=config.cs_autoscale)
    mask = torch.from_numpy(labelled)
    y_true = torch.from_numpy(y_lab)
    # As in label_propagation: the matrix's values are the weights; edge_weight only keeps PyG
    # from re-normalising them.
    z = cs.correct(z, y_true, mask, adj, adj.values())
    z = cs.smooth(z, y_true, mask, adj, adj.values())
    return _scatter(z, classes, y_trainval.shape[1], neighbours.num_trainval)
