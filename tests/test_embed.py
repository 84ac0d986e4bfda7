"""The one embedder: layer-wise inference over all nodes equals the per-batch closure forward pass.

Synthetic data only (clustered unit vectors), labelled so.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from vidsage_core.embed import embed, embed_nodes, in_csr
from vidsage_core.graph import lite_graph
from vidsage_core.model import build_model


def synthetic(n: int = 90, d: int = 16, seed: int = 0):
    """Synthetic: clustered unit vectors and their 5-NN LiteVidSage graph."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(5, d))
    x = (centres[rng.integers(0, 5, n)] + 0.7 * rng.normal(size=(n, d))).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x, lite_graph(x, k=5, tau=-1.0, device="cpu")


@pytest.mark.parametrize("kwargs", [dict(hidden_dim=8, out_dim=8),  # input projection 16 -> 8
                                    dict(hidden_dim=16, out_dim=16),  # the paper's d -> d layer
                                    dict(hidden_dim=12, out_dim=6, share_weights=False)])
def test_layerwise_inference_equals_the_closure_forward(kwargs):
    x, g = synthetic()
    torch.manual_seed(0)
    model = build_model("vidsage", 16, final_activation=False, **kwargs)
    model.train()  # inference must switch dropout off itself (and restore the mode)
    ptr, src, w = g.csr()
    z_layer = model.inference(x, ptr, src, w, block=7)
    assert model.training
    # Reference: per batch of 11 targets, a forward pass on each batch's exact closure subgraph.
    z_closure = embed_nodes(model, x, g.edge_index, g.edge_weight, g.num_nodes, batch_size=11, max_full_nodes=0)
    np.testing.assert_allclose(z_layer, z_closure, rtol=0, atol=1e-6)
    model.eval()
    with torch.no_grad():
        z_full = model(torch.from_numpy(x), g.edge_index, g.edge_weight).numpy()
    np.testing.assert_allclose(z_layer, z_full, rtol=0, atol=1e-6)
    assert np.allclose(np.linalg.norm(z_layer, axis=1), 1.0, atol=1e-5)


def test_layerwise_inference_on_a_directed_graph_uses_in_edges():
    # Attachment graphs are directed (training -> new): the new node's row must see its in-edges
    # and the training rows must not see it.
    x, g = synthetic(40)
    x_new = x[:3] * 0.5 + x[3:6] * 0.5
    x_new /= np.linalg.norm(x_new, axis=1, keepdims=True)
    new_ei = torch.tensor([[0, 1, 3, 4, 5], [40, 40, 41, 42, 42]])
    ei = torch.cat([g.edge_index, new_ei], 1)
    ew = torch.cat([g.edge_weight, torch.full((5,), 0.5)])
    xa = np.concatenate([x, x_new]).astype(np.float32)
    torch.manual_seed(1)
    model = build_model("vidsage", 16, 8, 8).eval()
    ptr, src, w, _ = in_csr(ei, ew, 43)
    z = model.inference(xa, ptr, src, w, block=16)
    with torch.no_grad():
        ref = model(torch.from_numpy(xa), ei, ew).numpy()
    np.testing.assert_allclose(z, ref, rtol=0, atol=1e-6)


def test_embed_from_a_float16_memmap_into_a_memmap(tmp_path):
    x, g = synthetic()
    store = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float16, shape=x.shape)
    store[:] = x
    store.flush()
    x16 = np.load(tmp_path / "x.npy", mmap_mode="r")
    torch.manual_seed(0)
    model = build_model("vidsage", 16, 8, 8)
    out = np.lib.format.open_memmap(tmp_path / "z.npy", mode="w+", dtype=np.float16, shape=(g.num_nodes, 8))
    z = embed(model, x16, g, device="cpu", out=out, work_dir=tmp_path, block=13)
    assert z is out
    # The same numbers as the in-memory path on the float16 values, rounded to float16 once.
    ref = embed(model, np.asarray(x16, dtype=np.float32), g, device="cpu")
    np.testing.assert_array_equal(np.asarray(z), ref.astype(np.float16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.npy", "z.npy"]  # temporaries removed


def test_models_without_layerwise_inference_use_exact_closures():
    x, g = synthetic(50)
    torch.manual_seed(0)
    model = build_model("sage-mean", 16, 8, 8).eval()
    with torch.no_grad():
        ref = model(torch.from_numpy(x), g.edge_index, g.edge_weight).numpy()
    np.testing.assert_allclose(embed(model, x, g, device="cpu", max_full_nodes=0, batch_size=9), ref,
                               rtol=0, atol=1e-6)
