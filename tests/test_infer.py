"""Inductive embedding of unseen videos: attachment rule, exactness, batch independence.

Synthetic data only (labelled so).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vidsage_core.embed import embed, embed_nodes
from vidsage_core.graph import lite_graph, vidsage_graph
from vidsage_core.infer import InductiveEmbedder, attach, embed_one, embed_unseen
from vidsage_core.jaccard import jaccard_edges
from vidsage_core.model import build_model
from vidsage_core.pipeline import train_and_embed
from vidsage_core.train import TrainConfig


pytestmark = pytest.mark.usefixtures("one_torch_thread")


def unit(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, np.float32)
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def synthetic(n: int = 150, d: int = 16, seed: int = 0) -> np.ndarray:
    """Synthetic: clustered unit vectors."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, d))
    return unit(centres[rng.integers(0, 5, n)] + 0.7 * rng.normal(size=(n, d)))


def synthetic_objects(n: int, seed: int = 0) -> list[frozenset[str]]:
    """Synthetic object sets: 2-4 of 30 object names per video."""
    rng = np.random.default_rng(seed)
    return [frozenset(f"obj{j}" for j in rng.choice(30, rng.integers(2, 5), replace=False)) for _ in range(n)]


X = synthetic()
G = lite_graph(X, k=5, tau=-1.0, device="cpu")


def angles(*deg: float) -> np.ndarray:
    r = np.deg2rad(deg)
    return np.stack([np.cos(r), np.sin(r)], 1).astype(np.float32)


def test_attach_visual_edges_hand_worked():
    # Training videos at 0, 30, 90, 180 degrees; a new one at 10 degrees. Distances:
    # 2 sin(5deg)=0.174, 2 sin(10deg)=0.347, 2 sin(40deg)=1.286 -> g = 0.83, 0.65, -0.29.
    x_train = angles(0, 30, 90, 180)
    g = lite_graph(x_train, k=1, tau=-1.0, device="cpu")
    ei, ew, n = attach(angles(10), x_train, g, k=3, tau=0.0)
    assert n == 5
    e = g.num_edges
    assert torch.equal(ei[:, :e], g.edge_index) and torch.equal(ew[:e], g.edge_weight)  # training part kept
    assert ei[:, e:].tolist() == [[0, 1], [4, 4]]  # 0 -> new, 1 -> new; 90 deg fails tau; k caps 180 deg
    assert ew[e:].tolist() == [1.0, 1.0]  # LiteVidSage weight w2 = 1
    # tau = -1 keeps all k = 3 nearest
    ei, _, _ = attach(angles(10), x_train, g, k=3, tau=-1.0)
    assert sorted(ei[0, e:].tolist()) == [0, 1, 2]


def test_attach_defaults_come_from_the_training_graph():
    x_train = angles(0, 30, 90, 180)
    g = lite_graph(x_train, k=2, tau=-1.0, device="cpu")
    ei, _, _ = attach(angles(10), x_train, g)
    assert sorted(ei[0, g.num_edges:].tolist()) == [0, 1]  # k = 2 from graph.meta


def test_attach_object_edges_hand_worked():
    x_train = angles(0, 30, 90, 180)
    objs = [frozenset("ab"), frozenset("bc"), frozenset("d"), frozenset("abc")]
    g = vidsage_graph(x_train, objs, k=1, tau=-1.0, device="cpu", max_object_frequency=None)
    # New video at 200 deg (visual neighbour: node 3 at 180 deg) with objects {a, b}.
    # Jaccard: node0 {a,b} -> 1; node1 {b,c} -> 1/3; node2 {d} -> 0; node3 {a,b,c} -> 2/3.
    ei, ew, n = attach(angles(200), x_train, g, objects_new=[frozenset("ab")], objects_train=objs, k=1,
                       tau=-1.0, max_object_frequency=None)
    got = dict(zip(ei[0, g.num_edges:].tolist(), ew[g.num_edges:].tolist()))
    assert got == pytest.approx({0: 0.7 * 1.0, 1: 0.7 / 3, 3: 0.7 * 2 / 3 + 0.3 * 1.0})
    assert set(ei[1, g.num_edges:].tolist()) == {4}
    with pytest.raises(ValueError, match="objects_train"):
        attach(angles(200), x_train, g, k=1, tau=-1.0)  # a VidSage graph needs objects


def test_object_edges_match_graph_jaccard_edges_on_the_union():
    """Reference: jaccard.jaccard_edges over training + new sets gives the new node's partners."""
    objs = synthetic_objects(80)
    new = synthetic_objects(6, seed=1)
    emb = InductiveEmbedder(torch.nn.Linear(1, 1), unit(np.ones((80, 2))), lite_graph(
        unit(np.random.default_rng(0).normal(size=(80, 2))), k=2, device="cpu"), objs, max_object_frequency=None)
    r, c, w = emb.objects.edges(new, min_jaccard=0.1, max_per_node=None)
    for i, s in enumerate(new):
        ref_ei, ref_w = jaccard_edges(objs + [s], min_jaccard=0.1, max_per_node=None, max_object_frequency=None)
        into = ref_ei[1] == 80
        ref = dict(zip(ref_ei[0, into].tolist(), ref_w[into].tolist()))
        ours = dict(zip(c[r == i].tolist(), w[r == i].tolist()))
        assert ours == pytest.approx(ref)


@pytest.mark.parametrize("name", ["vidsage", "gcn", "gat"])
def test_reattached_training_node_gets_its_transductive_embedding(name):
    torch.manual_seed(0)
    model = build_model(name, 16, 16, 16)
    z = embed(model, X, G)
    emb = InductiveEmbedder(model, X, G, device="cpu")
    rowptr, col, w = G.csr()
    for i in (0, 17, 149):
        nbrs, ws = col[rowptr[i]:rowptr[i + 1]].numpy(), w[rowptr[i]:rowptr[i + 1]].numpy()
        # Video i as a new node with exactly its training edges; its neighbours keep theirs
        # (including the edge from the original node i), which the second layer needs.
        zi = emb.embed_attached(X[i:i + 1], nbrs, np.zeros(len(nbrs), np.int64), ws)
        np.testing.assert_allclose(zi[0], z[i], atol=1e-5)


def test_new_videos_do_not_depend_on_batch_composition():
    torch.manual_seed(0)
    model = build_model("vidsage", 16, 16, 16)
    x_new = synthetic(7, seed=3)
    together = embed_unseen(model, X, G, x_new, k=4, tau=-1.0, device="cpu")
    small_batches = embed_unseen(model, X, G, x_new, k=4, tau=-1.0, batch_size=2, device="cpu")
    np.testing.assert_allclose(small_batches, together, atol=1e-6)
    for i in (0, 6):
        one = embed_one(model, X, G, x_new[i], k=4, tau=-1.0, device="cpu")
        np.testing.assert_allclose(one, together[i], atol=1e-5)
    # training embeddings are unaffected by attaching new videos
    ei, ew, n = attach(x_new, X, G, k=4, tau=-1.0)
    z_all = embed_nodes(model, np.concatenate([X, x_new]), ei, ew, n)
    np.testing.assert_allclose(z_all[:150], embed(model, X, G), atol=1e-6)
    np.testing.assert_allclose(z_all[150:], together, atol=1e-5)  # whole-graph pass agrees too


def test_embed_one_with_objects_matches_batch_path():
    torch.manual_seed(0)
    objs = synthetic_objects(150)
    g = vidsage_graph(X, objs, k=4, tau=-1.0, device="cpu")
    model = build_model("vidsage", 16, 16, 16)
    x_new, o_new = synthetic(3, seed=5), synthetic_objects(3, seed=5)
    batch = embed_unseen(model, X, g, x_new, objects_train=objs, objects_new=o_new, device="cpu")
    for i in range(3):
        one = embed_one(model, X, g, x_new[i], objects_train=objs, objects=o_new[i], device="cpu")
        np.testing.assert_allclose(one, batch[i], atol=1e-5)


def test_train_and_embed(tmp_path):
    x_test = synthetic(10, seed=9)
    cfg = TrainConfig(hidden_dim=16, out_dim=16, batch_size=64, epochs=1, num_negatives=2)
    z_tv, z_te, res = train_and_embed(X, G, x_test, cfg, tmp_path, attach_kwargs={"k": 3}, progress=False)
    assert z_tv.shape == (150, 16) and z_te.shape == (10, 16)
    np.testing.assert_allclose(z_tv, embed(res.model, X, G), atol=1e-6)
    assert not (tmp_path / "embeddings.npz").exists()  # the run writes the product file (ids, z)
    info = json.loads((tmp_path / "attach.json").read_text())
    assert info["rule"]["k"] == 3 and info["num_new"] == 10 and info["edges"] <= 30


def test_cached_training_messages_are_exact_and_follow_weight_updates():
    # VidSage embeds new videos from cached training-node messages; the cache must equal a
    # whole-graph pass (here with an input projection, 16 -> 8) and be recomputed after the
    # weights change in place (an optimiser step, load_state_dict).
    torch.manual_seed(0)
    model = build_model("vidsage", 16, 8, 8)
    assert model.proj is not None
    x_new = synthetic(5, seed=4)
    emb = InductiveEmbedder(model, X, G, k=4, tau=-1.0, device="cpu")
    ei, ew, n = attach(x_new, X, G, k=4, tau=-1.0)

    def whole_graph() -> np.ndarray:
        return embed_nodes(model, np.concatenate([X, x_new]), ei, ew, n)[150:]

    before = emb.embed(x_new)
    np.testing.assert_allclose(before, whole_graph(), atol=1e-5)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    after = emb.embed(x_new)
    np.testing.assert_allclose(after, whole_graph(), atol=1e-5)
    assert np.abs(after - before).max() > 1e-2
