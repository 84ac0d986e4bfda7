"""Tests for the "ivf-gemm" kNN mode of vidsage_core.graph (IVF probing as per-list GEMMs)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.knn_recall import knn_recall
from vidsage_core.graph import lite_graph
from vidsage_core.knn import DEFAULT_GEMM_NPROBE, build_index, knn

N, D, K = 3000, 64, 25
pytestmark = pytest.mark.usefixtures("one_torch_thread")  # small products: skip OpenMP hand-offs


def clustered(n: int = N, d: int = D, normalize: bool = True, seed: int = 0) -> np.ndarray:
    """A Gaussian mixture (30 clusters), optionally L2-normalised rows."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(30, d)) * 3
    x = (centres[rng.integers(30, size=n)] + rng.normal(size=(n, d))).astype(np.float32)
    if normalize:
        x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


@pytest.fixture(scope="module")
def data():
    x = clustered()
    return x, knn(x, K, device="cpu")


def assert_same_as_exact(dist, idx, ref_d, ref_i):
    # float32 distances from ||a||² + ||b||² - 2ab: the rounding grows with the magnitudes and
    # depends on the GEMM's blocking (shape, CPU kernel), so the tolerance is relative too
    # (seen on AMD EPYC: 2e-6 absolute on distances ~10).
    np.testing.assert_allclose(dist, ref_d, rtol=1e-5, atol=1e-5)
    # Same neighbours as a set per row, except that a neighbour tied with the k-th exact one (to
    # float rounding) may replace it.
    for r in range(len(idx)):
        for j in np.flatnonzero(~np.isin(idx[r], ref_i[r])):
            assert abs(dist[r, j] - ref_d[r, -1]) < 1e-5 * max(1.0, abs(ref_d[r, -1])), (r, idx[r, j])


@pytest.mark.parametrize("normalize", [True, False])  # inner product / L2
def test_all_lists_probed_equals_exact(normalize):
    x = clustered(normalize=normalize)
    ref_d, ref_i = knn(x, K, device="cpu")
    index = build_index(x, mode="ivf-gemm", device="cpu", nlist=20, nprobe=20)
    assert index.params["metric"] == ("ip" if normalize else "l2")
    index.index.max_block_elems = 1 << 16  # several query blocks per list
    dist, idx = knn(x, K, index=index)
    assert dist.dtype == np.float32 and idx.dtype == np.int64 and idx.shape == (N, K)
    assert_same_as_exact(dist, idx, ref_d, ref_i)
    assert np.all(np.diff(dist, axis=1) >= 0)


def test_default_recall_and_no_self(data):
    x, (_, ref_i) = data
    dist, idx = knn(x, K, mode="ivf-gemm", device="cpu")
    recall = np.mean([len(np.intersect1d(a, b)) for a, b in zip(idx, ref_i)]) / K
    assert recall >= 0.9, recall
    assert not np.any(idx == np.arange(N)[:, None]), "a query returned itself"
    assert np.all(idx >= 0) and np.all(np.isfinite(dist))
    # Distances belong to the returned ids.
    true_d = np.linalg.norm(x[idx] - x[:, None, :], axis=-1)
    np.testing.assert_allclose(dist, true_d, atol=1e-4)
    index = build_index(x, mode="ivf-gemm", device="cpu")
    assert index.params["nlist"] == round(N ** 0.5)
    assert index.params["nprobe"] == DEFAULT_GEMM_NPROBE
    assert knn_recall(x, K, "ivf-gemm", sample=200, device="cpu", index=index)["recall"] >= 0.9


def test_deterministic(data):
    x, _ = data
    a = knn(x, K, mode="ivf-gemm", device="cpu", nprobe=2)
    b = knn(x, K, mode="ivf-gemm", device="cpu", nprobe=2)
    np.testing.assert_array_equal(a[1], b[1])
    np.testing.assert_array_equal(a[0], b[0])


def test_query_rows_and_external_queries(data):
    x, (ref_d, ref_i) = data
    index = build_index(x, mode="ivf-gemm", device="cpu", nlist=20, nprobe=5)
    d_all, i_all = knn(x, K, index=index)
    rows = np.array([3, 500, 2999])
    d, i = knn(x, K, query_rows=rows, index=index)
    np.testing.assert_array_equal(i, i_all[rows])
    np.testing.assert_allclose(d, d_all[rows], atol=1e-6)
    # External queries keep everything (a query equal to row 7 finds row 7 at distance 0).
    dq, iq = knn(x, K, queries=x[[7, 8]], index=index)
    assert iq[0, 0] == 7 and dq[0, 0] < 1e-3
    np.testing.assert_array_equal(iq[:, 1:], i_all[[7, 8], :K - 1])


def test_float16_memmap_accepted(tmp_path, data):
    x, _ = data
    x16 = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=x.shape)
    x16[:] = x
    x16.flush()
    x16 = np.load(tmp_path / "x.npy", mmap_mode="r")
    d16, i16 = knn(x16, K, mode="ivf-gemm", device="cpu")
    d32, i32 = knn(np.asarray(x16, dtype=np.float32), K, mode="ivf-gemm", device="cpu")
    np.testing.assert_array_equal(i16, i32)  # float16 -> float32 per block is exact
    np.testing.assert_allclose(d16, d32, atol=1e-6)


def test_few_candidates_are_padded():
    x = clustered(n=200)
    dist, idx = knn(x, 150, mode="ivf-gemm", device="cpu", nlist=5, nprobe=1)
    assert np.all((idx >= 0) == np.isfinite(dist))
    assert np.any(idx == -1)  # one list of ~40 rows cannot supply 150 neighbours
    for r in range(len(x)):
        got = idx[r][idx[r] >= 0]
        assert len(np.unique(got)) == len(got) and r not in got


def test_lite_graph_accepts_mode(data):
    x, _ = data
    g = lite_graph(x, k=10, tau=-1.0, mode="ivf-gemm", device="cpu")
    g.validate()
    assert g.meta["mode"] == "ivf-gemm" and g.degree().min() >= 10


def test_bad_arguments(data):
    x, _ = data
    with pytest.raises(ValueError, match="k=3000"):
        knn(x, N, mode="ivf-gemm", device="cpu")
    with pytest.raises(ValueError, match="nprobe=30 must be in"):
        knn(x, K, mode="ivf-gemm", device="cpu", nlist=20, nprobe=30)
    with pytest.raises(ValueError, match="nlist=4000"):
        build_index(x, mode="ivf-gemm", device="cpu", nlist=4000)
    with pytest.raises(ValueError, match="dimension"):
        knn(x, K, queries=x[:5, :10], mode="ivf-gemm", device="cpu")
    with pytest.raises(ValueError, match="2-D"):
        knn(x[0], K, mode="ivf-gemm", device="cpu")
