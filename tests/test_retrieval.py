"""Embeddings as a product: the embeddings.npz format, FAISS search, label-sharing retrieval."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import scipy.sparse as sp

from vidsage_core.retrieval import (EmbeddingIndex, IndexConfig, label_retrieval, load_embeddings,
                                    neighbours_of, save_embeddings)
from vidsage_core.safe_io import UnsafeFileError


def test_embeddings_file_holds_unicode_ids_and_float32_z_without_pickles(tmp_path):
    ids = ["a1", "b22", "ccc"]
    z = np.arange(6, dtype=np.float64).reshape(3, 2)
    path = save_embeddings(tmp_path / "e" / "embeddings.npz", ids, z)
    with np.load(path, allow_pickle=False) as f:  # plain numpy can read it, no pickle
        assert sorted(f.files) == ["ids", "z"]
        assert f["ids"].dtype.kind == "U" and f["ids"].tolist() == ids
        assert f["z"].dtype == np.float32 and f["z"].shape == (3, 2)
    got_ids, got_z = load_embeddings(path)
    assert got_ids.tolist() == ids and np.array_equal(got_z, z.astype(np.float32))
    with pytest.raises(ValueError, match="3 ids but embeddings of shape"):
        save_embeddings(tmp_path / "bad.npz", ids, np.zeros((2, 2)))


def test_embeddings_with_object_ids_are_refused(tmp_path):
    path = tmp_path / "embeddings.npz"
    np.savez(path, ids=np.array(["a", 1], dtype=object), z=np.zeros((2, 2), np.float32))
    with pytest.raises(UnsafeFileError, match="embeddings.npz"):
        load_embeddings(path)


def test_flat_index_returns_the_exact_cosine_neighbours():
    rng = np.random.default_rng(0)
    z = rng.standard_normal((300, 16)).astype(np.float32) * rng.uniform(0.5, 3, (300, 1)).astype(np.float32)
    q = rng.standard_normal((7, 16)).astype(np.float32)
    index = EmbeddingIndex(z)
    assert index.kind == "flat-ip"
    sims, idx = index.search(q, 5)
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    ref = (q / np.linalg.norm(q, axis=1, keepdims=True)) @ zn.T
    np.testing.assert_array_equal(idx, np.argsort(-ref, axis=1)[:, :5])
    np.testing.assert_allclose(sims, np.take_along_axis(ref, idx, 1), rtol=1e-5)


def test_ivf_index_above_the_threshold_finds_the_same_neighbours_when_probing_every_list():
    rng = np.random.default_rng(1)
    z = rng.standard_normal((2000, 8)).astype(np.float32)
    q = rng.standard_normal((20, 8)).astype(np.float32)
    ivf = EmbeddingIndex(z, IndexConfig(exact_max=1000, nlist=16, nprobe=16))
    assert ivf.kind.startswith("ivf-flat")
    _, got = ivf.search(q, 10)
    _, ref = EmbeddingIndex(z).search(q, 10)
    np.testing.assert_array_equal(got, ref)


def test_neighbours_of_a_known_id_by_hand():
    # Unit vectors at angles 0, 10, 30, 100, 185 degrees: from "b" (10): a (10 apart), c (20),
    # d (90), e (175); the video itself is never listed.
    ang = np.deg2rad([0, 10, 30, 100, 185])
    z = np.stack([np.cos(ang), np.sin(ang)], 1).astype(np.float32)
    ids = np.array(["a", "b", "c", "d", "e"])
    hits = neighbours_of(ids, z, "b", k=3)
    assert [h[0] for h in hits] == ["a", "c", "d"]
    np.testing.assert_allclose([h[1] for h in hits], np.cos(np.deg2rad([10, 20, 90])), atol=1e-6)
    with pytest.raises(KeyError, match="'zz'"):
        neighbours_of(ids, z, "zz")


def _literal_label_retrieval(zq, yq, zdb, ydb, k_p, k_map):
    """Sort every database video by cosine (stable), test label overlap with Python sets."""
    qn = zq / np.linalg.norm(zq, axis=1, keepdims=True)
    dn = zdb / np.linalg.norm(zdb, axis=1, keepdims=True)
    p_sum, ap_sum = 0.0, 0.0
    for i in range(len(zq)):
        mine = set(np.flatnonzero(yq[i]))
        order = sorted(range(len(zdb)), key=lambda j: -float(qn[i] @ dn[j]))
        rel = [bool(mine & set(np.flatnonzero(ydb[j]))) for j in order]
        p_sum += sum(rel[:k_p]) / k_p
        total, hits, ap = sum(rel), 0, 0.0
        for r, is_rel in enumerate(rel[:k_map], start=1):
            if is_rel:
                hits += 1
                ap += hits / r
        ap_sum += ap / min(total, k_map) if total else 0.0
    return p_sum / len(zq), ap_sum / len(zq)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_label_retrieval_matches_a_literal_re_implementation(seed):
    rng = np.random.default_rng(seed)
    zq, zdb = rng.standard_normal((25, 6)), rng.standard_normal((150, 6))
    yq = (rng.random((25, 12)) < 0.12).astype(np.float32)
    ydb = (rng.random((150, 12)) < 0.12).astype(np.float32)
    got = label_retrieval(zq, sp.csr_matrix(yq), zdb, sp.csr_matrix(ydb), 10, 100)
    p, m = _literal_label_retrieval(zq, yq, zdb, ydb, 10, 100)
    assert got["retrieval_precision_at_10"] == pytest.approx(p, abs=1e-9)
    assert got["retrieval_map_at_100"] == pytest.approx(m, abs=1e-9)


def test_pickle_is_never_needed_to_read_an_embeddings_file(tmp_path):
    path = save_embeddings(tmp_path / "embeddings.npz", ["x"], np.ones((1, 3)))
    with np.load(path, allow_pickle=False) as f:
        for name in f.files:
            assert f[name].dtype != object
    (tmp_path / "not.npz").write_bytes(pickle.dumps({"ids": ["x"]}))
    with pytest.raises(UnsafeFileError, match="not.npz"):
        load_embeddings(tmp_path / "not.npz")
