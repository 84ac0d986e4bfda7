"""Tests for vidsage_core.graph: kNN against brute force, graphs on hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from benchmarks.knn_recall import knn_recall
from vidsage_core.graph import VideoGraph, build_graph, lite_graph, vidsage_graph
from vidsage_core.graph_stats import graph_stats
from vidsage_core.jaccard import jaccard_edges
from vidsage_core.knn import build_index, knn


def brute_force(xb: np.ndarray, xq: np.ndarray, k: int, exclude_self: bool):
    """Reference: all-pairs Euclidean distances in float64, self masked out by index."""
    d = np.sqrt(((xq[:, None, :].astype(np.float64) - xb[None, :, :]) ** 2).sum(-1))
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    idx = np.argsort(d, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(d, idx, 1), idx


def edge_dict(g: VideoGraph) -> dict[tuple[int, int], float]:
    """Undirected edges (u < v) -> weight."""
    r, c = g.edge_index.numpy()
    w = g.edge_weight.numpy()
    return {(int(a), int(b)): float(x) for a, b, x in zip(r, c, w) if a < b}


# ------------------------------------------------------------------------------------ kNN
@pytest.mark.parametrize("backend", ["faiss", "torch"])
@pytest.mark.parametrize("normalize", [False, True])  # L2 index / inner-product index
def test_knn_exact_matches_brute_force(normalize, backend):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 16)).astype(np.float32)
    if normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    dist, idx = knn(x, 7, batch_size=64, device="cpu", backend=backend)  # several blocks
    ref_d, ref_i = brute_force(x, x, 7, exclude_self=True)
    assert dist.dtype == np.float32 and idx.dtype == np.int64 and dist.shape == (300, 7)
    np.testing.assert_array_equal(idx, ref_i)  # continuous random data: no ties
    np.testing.assert_allclose(dist, ref_d, atol=2e-5)


def test_knn_external_queries_keep_everything():
    rng = np.random.default_rng(1)
    xb = rng.normal(size=(100, 8)).astype(np.float32)
    xq = rng.normal(size=(20, 8)).astype(np.float32)
    dist, idx = knn(xb, 5, queries=xq, device="cpu", backend="faiss")
    ref_d, ref_i = brute_force(xb, xq, 5, exclude_self=False)
    np.testing.assert_array_equal(idx, ref_i)
    np.testing.assert_allclose(dist, ref_d, atol=2e-5)


@pytest.mark.parametrize("backend", ["faiss", "torch"])
@pytest.mark.parametrize("normalize", [False, True])
def test_knn_exclude_self_by_index_with_duplicates(normalize, backend):
    rng = np.random.default_rng(2)
    base = rng.normal(size=(30, 8)).astype(np.float32)
    # Groups of 1..5 identical vectors: with k=2 a group of 5 means FAISS may rank the query's
    # own row anywhere among 5 zero distances, or not return it in its top k+1 at all.
    x = np.repeat(base, rng.integers(1, 6, size=30), axis=0)
    if normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    n, k = len(x), 2
    dist, idx = knn(x, k, device="cpu", backend=backend)
    ref_d, _ = brute_force(x, x, k, exclude_self=True)
    assert not np.any(idx == np.arange(n)[:, None]), "a query returned itself"
    np.testing.assert_allclose(dist, ref_d, atol=1e-3)  # duplicates come back at distance ~0
    true_d = np.linalg.norm(x[idx] - x[:, None, :], axis=-1)
    np.testing.assert_allclose(dist, true_d, atol=1e-3)  # ids agree with their distances
    # A duplicate of the query is a neighbour: where one exists it is at distance 0.
    has_dup = (np.abs(x[:, None, :] - x[None]).sum(-1) == 0).sum(1) > 1
    assert np.all(dist[has_dup, 0] < 1e-3)
    assert np.all(idx >= 0)


def test_knn_query_rows_match_full_run():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(120, 8)).astype(np.float32)
    d_all, i_all = knn(x, 4, device="cpu")
    rows = np.array([5, 17, 99])
    d, i = knn(x, 4, query_rows=rows, device="cpu")
    np.testing.assert_array_equal(i, i_all[rows])
    # Same values up to float32 rounding: a 3-row query is another GEMM shape than the full run,
    # and some CPU kernels (seen on AMD EPYC) block it differently.
    np.testing.assert_allclose(d, d_all[rows], rtol=1e-6)


def test_torch_backend_matches_brute_force():
    rng = np.random.default_rng(4)
    x = rng.normal(size=(200, 12)).astype(np.float32)
    for data in (x, x / np.linalg.norm(x, axis=1, keepdims=True)):
        index = build_index(data, backend="torch", device="cpu")
        index.index.max_block_elems = 1000  # force several query blocks
        dist, idx = knn(data, 6, index=index)
        ref_d, ref_i = brute_force(data, data, 6, exclude_self=True)
        np.testing.assert_array_equal(idx, ref_i)
        np.testing.assert_allclose(dist, ref_d, atol=2e-5)


def test_knn_rejects_bad_k():
    x = np.eye(4, dtype=np.float32)
    with pytest.raises(ValueError, match="k=4"):
        knn(x, 4)  # only 3 others once self is excluded
    knn(x, 3)


@pytest.mark.parametrize("mode", ["ivf", "hnsw"])
def test_approximate_recall_on_clustered_data(mode):
    rng = np.random.default_rng(5)
    centers = rng.normal(size=(20, 32)) * 5
    x = (np.repeat(centers, 100, axis=0) + rng.normal(size=(2000, 32))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    res = knn_recall(x, 10, mode, sample=200, seed=0, device="cpu")
    assert res["recall"] >= 0.95, res
    assert res["sample"] == 200 and res["mode"] == mode


def test_knn_recall_exact_is_one():
    x = np.random.default_rng(6).normal(size=(100, 8)).astype(np.float32)
    assert knn_recall(x, 5, "exact", sample=50, device="cpu")["recall"] == 1.0


# ------------------------------------------------------------------------------------ graphs
# Four unit vectors on the circle at 0, 10, 90 and 180 degrees. Chord lengths 2 sin(d/2):
#   d(0,1) = 0.1743 (g = 0.826)   d(0,2) = 1.4142 (g = -0.414)  d(0,3) = 2.0000 (g = -1.000)
#   d(1,2) = 1.2856 (g = -0.286)  d(1,3) = 1.9924 (g = -0.992)  d(2,3) = 1.4142 (g = -0.414)
CIRCLE = np.array([[math.cos(math.radians(a)), math.sin(math.radians(a))]
                   for a in (0, 10, 90, 180)], dtype=np.float32)


def test_lite_graph_hand_example():
    # k=1 nearest: 0->1, 1->0, 2->1, 3->2 ; union: {0-1, 1-2, 2-3}; k caps 6 pairs to 3.
    g = lite_graph(CIRCLE, k=1, tau=-1.0, device="cpu")
    g.validate()
    assert edge_dict(g) == {(0, 1): 1.0, (1, 2): 1.0, (2, 3): 1.0}
    assert g.meta["kind"] == "lite" and g.meta["k"] == 1 and g.meta["tau"] == -1.0
    # k=2: candidates 0:{1,2} 1:{0,2} 2:{1,0|3} 3:{2,1}; tau=-0.35 keeps g >= -0.35:
    # 0-1 (0.826) and 1-2 (-0.286); 0-2 and 2-3 (-0.414) and 1-3 (-0.992) fail -> 3 isolated.
    g = lite_graph(CIRCLE, k=2, tau=-0.35, device="cpu")
    assert edge_dict(g) == {(0, 1): 1.0, (1, 2): 1.0}
    assert g.degree().tolist() == [1, 2, 1, 0]
    # tau=0 keeps only the 10-degree pair.
    assert edge_dict(lite_graph(CIRCLE, k=3, tau=0.0, device="cpu")) == {(0, 1): 1.0}
    # mutual: 2->1 and 3->2 are not reciprocated at k=1.
    assert edge_dict(lite_graph(CIRCLE, k=1, tau=-1.0, symmetrize="mutual")) == {(0, 1): 1.0}


def test_lite_graph_requires_normalised_features():
    with pytest.raises(ValueError, match="L2-normalised"):
        lite_graph(CIRCLE * 2, k=1)


def test_lite_graph_approximate_equals_exact_on_easy_data():
    g_exact = lite_graph(CIRCLE, k=1, tau=-1.0)
    g_hnsw = lite_graph(CIRCLE, k=1, tau=-1.0, mode="hnsw")
    assert edge_dict(g_exact) == edge_dict(g_hnsw)


OBJECTS = [
    frozenset({"dog", "cat", "ball"}),
    frozenset({"cat", "ball", "car"}),
    frozenset({"ball"}),
    frozenset({"tree"}),
    frozenset({"dog", "cat", "ball"}),
]


def test_jaccard_edges_hand_example():
    # J(0,1) = |{cat,ball}| / |{dog,cat,ball,car}| = 2/4; J(0,2) = 1/3; J(0,4) = 3/3;
    # J(1,2) = 1/3; J(1,4) = 2/4; J(2,4) = 1/3; video 3 shares nothing.
    ei, w = jaccard_edges(OBJECTS, min_jaccard=0.1, max_per_node=None, max_object_frequency=None)
    g = VideoGraph(ei, w, 5)
    g.validate()
    want = {(0, 1): 0.5, (0, 2): 1 / 3, (0, 4): 1.0, (1, 2): 1 / 3, (1, 4): 0.5, (2, 4): 1 / 3}
    got = edge_dict(g)
    assert got.keys() == want.keys()
    for e, v in want.items():
        assert got[e] == pytest.approx(v, abs=1e-6)
    # min_jaccard 0.4 drops the three 1/3 pairs.
    ei, w = jaccard_edges(OBJECTS, min_jaccard=0.4, max_per_node=None, max_object_frequency=None)
    assert set(edge_dict(VideoGraph(ei, w, 5))) == {(0, 1), (0, 4), (1, 4)}


def test_jaccard_stop_objects_count_but_do_not_generate():
    # Limit 0.5 * 5 = 2.5 videos: "ball" (4 videos) and "cat" (3) are stop objects; only "dog"
    # (videos 0, 4) generates a pair, and its weight is still the full-set Jaccard 3/3 = 1.
    ei, w, info = jaccard_edges(OBJECTS, min_jaccard=0.1, max_per_node=None,
                                max_object_frequency=0.5, return_info=True)
    assert edge_dict(VideoGraph(ei, w, 5)) == {(0, 4): 1.0}
    assert sorted(info["stop_objects"]) == ["ball", "cat"]


def test_jaccard_top_m_per_node():
    ei, w = jaccard_edges(OBJECTS, min_jaccard=0.1, max_per_node=1, max_object_frequency=None)
    got = edge_dict(VideoGraph(ei, w, 5))
    assert (0, 4) in got and got[(0, 4)] == 1.0  # 0's and 4's best partner
    # 1 keeps one of its two 0.5 partners (0 or 4), 2 one of its three 1/3 partners.
    assert sum(1 for e in got if 1 in e and got[e] == 0.5) >= 1
    assert any(2 in e for e in got)
    assert len(got) <= 4  # at most one kept pair per video with partners, union
    # Small row blocks give the same result as one block.
    ei2, w2 = jaccard_edges(OBJECTS, min_jaccard=0.1, max_per_node=1, max_object_frequency=None,
                            max_block_pairs=1)
    assert torch.equal(ei, ei2) and torch.equal(w, w2)


def test_vidsage_graph_mixes_alpha_beta():
    # Visual (k=1, tau=-1): {0-1, 1-2, 2-3}, weight 1.
    # Objects: J(0,1) = 1/2, J(1,2) = 1/2, J(0,3) = 1/2, J(0,2) = 1/3 (< 0.4, dropped).
    objs = [frozenset({"dog", "cat"}), frozenset({"cat"}), frozenset({"cat", "car"}),
            frozenset({"dog"})]
    g = vidsage_graph(CIRCLE, objs, alpha=0.7, beta=0.3, k=1, tau=-1.0, object_source="hand",
                      min_jaccard=0.4, max_per_node=None, max_object_frequency=None)
    g.validate()
    got = edge_dict(g)
    # both: 0.7*0.5 + 0.3*1 = 0.65; objects only: 0.7*0.5 = 0.35; visual only: 0.3*1 = 0.3.
    want = {(0, 1): 0.65, (1, 2): 0.65, (0, 3): 0.35, (2, 3): 0.3}
    assert got.keys() == want.keys()
    for e, v in want.items():
        assert got[e] == pytest.approx(v, abs=1e-6)
    m = g.meta
    assert (m["kind"], m["alpha"], m["beta"], m["k"], m["tau"], m["object_source"]) == \
        ("vidsage", 0.7, 0.3, 1, -1.0, "hand")
    assert (m["visual_edges"], m["object_edges"], m["both_edges"]) == (3, 3, 2)
    g2 = vidsage_graph(CIRCLE, objs, alpha=0.5, beta=0.5, k=1, tau=-1.0, min_jaccard=0.4,
                       max_per_node=None, max_object_frequency=None)
    assert edge_dict(g2)[(0, 1)] == pytest.approx(0.75) and edge_dict(g2)[(2, 3)] == 0.5


# ------------------------------------------------------------------------------------ container
def hand_graph() -> VideoGraph:
    # 6 nodes; edges 0-1 (w 1), 1-2 (w 2), 3-4 (w 1); node 5 isolated.
    return build_graph([0, 1, 3], [1, 2, 4], np.array([1.0, 2.0, 1.0]), 6, {"kind": "hand"})


def test_graph_stats_hand_graph():
    labels = sp.csr_matrix(np.array([
        [1, 0, 0, 0],  # 0: A
        [1, 1, 0, 0],  # 1: A, B
        [0, 0, 1, 0],  # 2: C
        [0, 0, 0, 1],  # 3: D
        [0, 0, 0, 1],  # 4: D
        [1, 0, 0, 0],  # 5: A
    ], dtype=np.float32))
    st = graph_stats(hand_graph(), labels)
    assert st["num_nodes"] == 6 and st["num_edges"] == 3
    assert (st["degree_min"], st["degree_max"], st["degree_median"]) == (0, 2, 1.0)
    assert st["degree_mean"] == pytest.approx(1.0)  # degrees 1,2,1,1,1,0
    assert st["degree_histogram"] == {"bins": ["0", "1", "2-3"], "counts": [1, 4, 1]}
    assert (st["num_components"], st["largest_component"], st["isolated_nodes"]) == (3, 3, 1)
    # 0-1 share A, 1-2 share nothing, 3-4 share D: 2/3; weighted (1 + 1) / (1 + 2 + 1) = 0.5.
    assert st["homophily"] == pytest.approx(2 / 3)
    assert st["weighted_homophily"] == pytest.approx(0.5)
    # Masking node 4 (e.g. a test video) leaves 0-1 and 1-2: 1/2.
    mask = np.array([1, 1, 1, 1, 0, 1], dtype=bool)
    assert graph_stats(hand_graph(), labels, node_mask=mask)["homophily"] == pytest.approx(0.5)


def test_build_graph_coalesces_and_symmetrises():
    g = build_graph([0, 1, 2, 2, 0], [1, 0, 2, 0, 1], np.array([1.0, 3.0, 9.0, 2.0, 0.5]), 3)
    g.validate()
    assert g.edge_index.tolist() == [[0, 0, 1, 2], [1, 2, 0, 0]]  # self loop 2-2 dropped
    assert g.edge_weight.tolist() == [3.0, 2.0, 3.0, 2.0]  # max of duplicates


def test_videograph_csr_save_load_pyg(tmp_path):
    g = hand_graph()
    rowptr, col, w = g.csr()
    assert rowptr.tolist() == [0, 1, 3, 4, 5, 6, 6]
    assert col.tolist() == [1, 0, 2, 1, 4, 3]
    assert w.tolist() == [1.0, 1.0, 2.0, 2.0, 1.0, 1.0]
    g2 = VideoGraph.load(g.save(tmp_path / "g.pt"))
    assert torch.equal(g2.edge_index, g.edge_index) and torch.equal(g2.edge_weight, g.edge_weight)
    assert g2.num_nodes == 6 and g2.meta == {"kind": "hand"}
    data = g.to_pyg()
    assert data.num_nodes == 6 and data.is_undirected() and "x" not in data


def test_validate_catches_asymmetry():
    g = VideoGraph(torch.tensor([[0], [1]]), torch.tensor([1.0]), 2)
    with pytest.raises(ValueError, match="symmetric"):
        g.validate()
