"""Tests for vidsage_core.model: the paper's layer by hand, weight sharing, the variants."""

from __future__ import annotations

import math

import pytest
import torch

from vidsage_core.model import (MODELS, GNNEncoder, VidSage, VidSageConv, build_model,
                                count_parameters, encode_subgraph, hop_slices)
from vidsage_core.sampler import NeighborSampler, csr_from_edge_index

# The 4-node test graph (undirected, both directions listed; PyG: edge (j, i) sends j -> i):
#   0 —1.0— 1,   0 —0.5— 2,   2 —2.0— 3
EDGES = [(0, 1, 1.0), (0, 2, 0.5), (2, 3, 2.0)]
X4 = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [1.0, 2.0]])
W1 = torch.tensor([[1.0, -1.0], [0.0, 2.0]])  # W1 h = (h1 - h2, 2 h2)
W2 = torch.tensor([[2.0, 0.0, 1.0, 0.0],  # x-out = 2 h1 + a1
                   [0.0, 3.0, 0.0, -1.0]])  # y-out = 3 h2 - a2


def undirected(edges):
    src = [a for a, b, _ in edges] + [b for a, b, _ in edges]
    dst = [b for a, b, _ in edges] + [a for a, b, _ in edges]
    w = [c for *_, c in edges] * 2
    return torch.tensor([src, dst]), torch.tensor(w)


def hand_layer() -> VidSageConv:
    conv = VidSageConv(2, 2, dropout=0.5)
    with torch.no_grad():
        conv.lin1.weight.copy_(W1)
        conv.lin2.weight.copy_(W2)
    return conv.eval()


def random_graph(n: int, p: float, seed: int):
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, n, generator=g) < p
    a = torch.triu(a, 1)
    src, dst = a.nonzero(as_tuple=True)
    w = torch.rand(src.numel(), generator=g) + 0.1
    return torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1), torch.cat([w, w])


def test_vidsage_conv_matches_hand_computation():
    ei, w = undirected(EDGES)
    conv = hand_layer()
    # Messages m_j = ReLU(W1 h_j):
    #   m0 = ReLU(1-0, 0) = (1, 0)    m1 = ReLU(0-1, 2) = (0, 2)
    #   m2 = ReLU(1-1, 2) = (0, 2)    m3 = ReLU(1-2, 4) = (0, 4)
    # Weighted sums a_i = Σ_j w_ij m_j:
    #   a0 = 1·m1 + 0.5·m2 = (0, 3)   a1 = 1·m0 = (1, 0)
    #   a2 = 0.5·m0 + 2·m3 = (0.5, 8) a3 = 2·m2 = (0, 4)
    # W2 [h_i ‖ a_i] = (2 h_i1 + a_i1, 3 h_i2 - a_i2), then ReLU:
    #   node 0: (2 + 0,   0 - 3) = (2, -3)  -> (2, 0)
    #   node 1: (0 + 1,   3 - 0) = (1, 3)   -> (1, 3)
    #   node 2: (2 + 0.5, 3 - 8) = (2.5,-5) -> (2.5, 0)
    #   node 3: (2 + 0,   6 - 4) = (2, 2)   -> (2, 2)
    expected_raw = torch.tensor([[2.0, 0.0], [1.0, 3.0], [2.5, 0.0], [2.0, 2.0]])
    conv.normalize = False
    assert torch.allclose(conv(X4, ei, w), expected_raw)
    # L2 normalisation: (1, 0), (1, 3)/√10, (1, 0), (1, 1)/√2
    conv.normalize = True
    r10, r2 = 1 / math.sqrt(10), 1 / math.sqrt(2)
    expected = torch.tensor([[1.0, 0.0], [r10, 3 * r10], [1.0, 0.0], [r2, r2]])
    assert torch.allclose(conv(X4, ei, w), expected, atol=1e-6)


def test_vidsage_conv_unit_weights_when_edge_weight_is_none():
    ei, _ = undirected(EDGES)
    conv = hand_layer()
    conv.normalize = False
    # a0 = m1 + m2 = (0, 4); a1 = m0 = (1, 0); a2 = m0 + m3 = (1, 4); a3 = m2 = (0, 2)
    # node 0: (2, 0-4) -> (2, 0); node 1: (1, 3); node 2: (3, 3-4) -> (3, 0); node 3: (2, 6-2)
    expected = torch.tensor([[2.0, 0.0], [1.0, 3.0], [3.0, 0.0], [2.0, 4.0]])
    assert torch.allclose(conv(X4, ei, None), expected)
    assert torch.allclose(conv(X4, ei, torch.ones(ei.shape[1])), expected)


def test_vidsage_conv_matches_dense_formula_on_random_graph():
    torch.manual_seed(0)
    n, d = 12, 5
    ei, w = random_graph(n, 0.3, seed=1)
    x = torch.randn(n, d)
    conv = VidSageConv(d, d, bias=True).eval()
    a = torch.zeros(n, n)
    a[ei[1], ei[0]] = w  # a[i, j] = w_ij for messages j -> i
    agg = a @ torch.relu(conv.lin1(x))
    ref = torch.nn.functional.normalize(torch.relu(conv.lin2(torch.cat([x, agg], 1))), dim=1)
    assert torch.allclose(conv(x, ei, w), ref, atol=1e-5)


def test_vidsage_output_depends_only_on_neighbours():
    torch.manual_seed(0)
    n, d = 10, 6
    ei, w = random_graph(n, 0.25, seed=3)
    conv = VidSageConv(d).eval()
    x = torch.randn(n, d)
    i = int(ei[1][0])
    nbrs = set(ei[0][ei[1] == i].tolist())
    far = [k for k in range(n) if k != i and k not in nbrs]
    assert far and nbrs
    base = conv(x, ei, w)[i]
    x2 = x.clone()
    x2[far] += 10 * torch.randn(len(far), d)
    assert torch.allclose(conv(x2, ei, w)[i], base)
    x3 = x.clone()
    x3[sorted(nbrs)] += 10 * torch.randn(len(nbrs), d)
    assert not torch.allclose(conv(x3, ei, w)[i], base)


def test_shared_vidsage_is_one_layer_applied_twice():
    torch.manual_seed(0)
    model = VidSage(8, 8, 8).eval()
    assert model.proj is None
    layers = model.layers()
    assert len(layers) == 2 and layers[0] is layers[1] is model.conv
    # W1 8x8 + W2 16->8, no biases (paper's formula): 3·8² = 192 parameters in total.
    assert count_parameters(model) == 3 * 8 * 8
    ei, w = random_graph(9, 0.4, seed=2)
    x = torch.randn(9, 8)
    twice = model.conv(model.conv(x, ei, w), ei, w)
    assert torch.allclose(model(x, ei, w), twice)


def test_weight_sharing_shapes_and_projection():
    with_proj = VidSage(12, 8, 8)
    assert isinstance(with_proj.proj, torch.nn.Linear)
    assert tuple(with_proj.proj.weight.shape) == (8, 12)
    assert tuple(with_proj.conv.lin1.weight.shape) == (8, 8)
    assert tuple(with_proj.conv.lin2.weight.shape) == (8, 16)
    assert count_parameters(with_proj) == 12 * 8 + 3 * 8 * 8
    unshared = VidSage(12, 8, 4, share_weights=False)
    # conv1: W1 12x12, W2 24->8; conv2: W1 8x8, W2 16->4
    assert count_parameters(unshared) == 144 + 24 * 8 + 64 + 16 * 4
    assert unshared.layers()[0] is not unshared.layers()[1]
    with pytest.raises(ValueError, match="out_dim"):
        VidSage(12, 8, 4)
    with pytest.raises(ValueError, match="out_dim"):
        build_model("vidsage", 12, 8, 4)
    # Paper-faithful default: hidden = out = in_dim, no projection (1152 for rgb+audio).
    paper = build_model("vidsage", 1152, None, None)
    assert paper.proj is None and paper.out_dim == 1152
    assert count_parameters(paper) == 3 * 1152 * 1152


def test_shared_weights_get_gradient_from_both_layers():
    torch.manual_seed(0)
    model = VidSage(4, 4, 4, dropout=0.0)
    ei, w = random_graph(6, 0.5, seed=0)
    x = torch.randn(6, 4)
    model(x, ei, w).sum().backward()
    g_model = model.conv.lin1.weight.grad.clone()
    # Gradient of a 2-layer composition equals the sum of per-use gradients: check against a
    # copy where the two uses have separate (identical) weights.
    torch.manual_seed(0)
    twin = VidSage(4, 4, 4, dropout=0.0, share_weights=False)
    twin.convs[0].load_state_dict(model.conv.state_dict())
    twin.convs[1].load_state_dict(model.conv.state_dict())
    twin(x, ei, w).sum().backward()
    g_sum = twin.convs[0].lin1.weight.grad + twin.convs[1].lin1.weight.grad
    assert torch.allclose(g_model, g_sum, atol=1e-6)


def test_final_activation_flag():
    torch.manual_seed(0)
    ei, w = random_graph(20, 0.3, seed=4)
    x = torch.randn(20, 16)
    z = VidSage(16, 16, 16).eval()(x, ei, w)
    assert (z >= 0).all()  # paper: ReLU on every layer -> non-negative embeddings
    z_lin = VidSage(16, 16, 16, final_activation=False).eval()(x, ei, w)
    assert (z_lin < 0).any()
    assert torch.allclose(z_lin.norm(dim=1), torch.ones(20), atol=1e-5)


@pytest.mark.parametrize("name", MODELS)
def test_variants_shape_norm_determinism(name):
    n, in_dim, hidden, out = 30, 24, 16, 16
    ei, w = random_graph(n, 0.2, seed=5)
    x = torch.randn(n, in_dim, generator=torch.Generator().manual_seed(1))

    def make():
        torch.manual_seed(7)
        return build_model(name, in_dim, hidden, out, dropout=0.5, heads=4)

    m1, m2 = make(), make()
    m1.eval(), m2.eval()
    z = m1(x, ei, w)
    assert z.shape == (n, out)
    assert torch.allclose(z.norm(dim=1), torch.ones(n), atol=1e-5)
    assert torch.equal(z, m2(x, ei, w))
    # Training mode (dropout active) is deterministic for a fixed torch seed too.
    m1.train(), m2.train()
    torch.manual_seed(3)
    za = m1(x, ei, w)
    torch.manual_seed(3)
    zb = m2(x, ei, w)
    assert torch.equal(za, zb)
    assert not torch.allclose(za, z)  # dropout did something


@pytest.mark.parametrize("name", MODELS)
def test_variants_run_on_sampled_subgraph(name):
    n = 60
    ei, w = random_graph(n, 0.15, seed=6)
    x = torch.randn(n, 12)
    sub = NeighborSampler(csr_from_edge_index(ei, w, n), fanouts=(5, 3), seed=0).sample(
        torch.arange(8))
    torch.manual_seed(0)
    model = build_model(name, 12, 8, 8, heads=2).eval()
    z = model(x[sub.n_id], sub.edge_index, sub.edge_weight)[: sub.batch_size]
    assert z.shape == (8, 8)
    assert torch.isfinite(z).all()


def test_hop_slices_arithmetic():
    # nodes per hop [2 seeds, 3 at hop 1, 4 at hop 2], edges per hop [5, 6]:
    # layer 0 reads all 9 nodes and 11 edges, outputs the 5 nodes of hops 0-1;
    # layer 1 reads those 5 nodes and the 5 hop-0 edges, outputs the 2 seeds.
    assert hop_slices(2, [2, 3, 4], [5, 6]) == [(9, 5, 11), (5, 2, 5)]
    assert hop_slices(2, None, None) is None
    with pytest.raises(ValueError, match="2 sampled hops"):
        hop_slices(2, [2, 3], [5])
    with pytest.raises(ValueError, match="both"):
        hop_slices(2, [2, 3, 4], None)


@pytest.mark.parametrize("name", MODELS)
def test_trimmed_forward_equals_untrimmed_seed_rows(name):
    n = 120
    ei, w = random_graph(n, 0.08, seed=11)
    x = torch.randn(n, 10, generator=torch.Generator().manual_seed(0))
    sub = NeighborSampler(csr_from_edge_index(ei, w, n), fanouts=(4, 3), seed=1).sample(
        torch.tensor([3, 30, 60, 90, 119]))
    torch.manual_seed(0)
    model = build_model(name, 10, 8, 8, heads=2).eval()
    untrimmed = model(x[sub.n_id], sub.edge_index, sub.edge_weight)[: sub.batch_size]
    trimmed = encode_subgraph(model, x, sub)
    assert trimmed.shape == (5, 8)
    assert torch.allclose(trimmed, untrimmed, atol=1e-6)
    assert torch.allclose(encode_subgraph(model, x, sub, trim=False), untrimmed)


def test_edge_weight_usage_per_variant():
    n = 25
    ei, w = random_graph(n, 0.3, seed=8)
    x = torch.randn(n, 8)
    w2 = w * torch.linspace(0.2, 3.0, w.numel())
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, 8, 8, 8, heads=2).eval()
        same = torch.allclose(model(x, ei, w), model(x, ei, w2))
        # SAGEConv has no edge-weight input (documented); the others use the weights.
        assert same == name.startswith("sage-"), name


def test_build_model_rejects_unknown_and_bad_heads():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("gin", 4, 4, 4)
    with pytest.raises(ValueError, match="heads"):
        build_model("gat", 4, 6, 4, heads=4)
    assert isinstance(build_model("gcn", 4, 4, 4), GNNEncoder)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_models_on_cuda_match_cpu():
    n = 40
    ei, w = random_graph(n, 0.2, seed=9)
    x = torch.randn(n, 16)
    for name in MODELS:
        torch.manual_seed(0)
        model = build_model(name, 16, 16, 16).eval()
        z_cpu = model(x, ei, w)
        z_gpu = model.cuda()(x.cuda(), ei.cuda(), w.cuda()).cpu()
        assert torch.allclose(z_cpu, z_gpu, atol=1e-4), name


def test_sparse_aggregation_matches_per_edge_reference_and_is_deterministic():
    # Reference: the per-edge formula Σ_e w_e ReLU(W1 h_src(e)) scattered to dst(e), forward
    # and backward; includes a duplicate edge (summed), a node with no in-edges and an isolated
    # source, on a rectangular (trimmed) layer with num_targets < n.
    from vidsage_core.model import weighted_adjacency
    torch.manual_seed(0)
    x = torch.randn(7, 5, requires_grad=True)
    ei = torch.tensor([[1, 2, 2, 4, 6, 6, 1], [0, 0, 0, 1, 2, 3, 3]])
    w = torch.tensor([0.5, 1.5, 1.5, 2.0, 0.25, 3.0, 1.0])
    conv = VidSageConv(5, 4, dropout=0.0).eval()
    out = conv(x, ei, w, num_targets=5)
    out.square().sum().backward()
    grad = x.grad.clone()
    x.grad = None
    m = torch.relu(conv.lin1(x))
    agg = torch.zeros(5, 5).index_add(0, ei[1], w[:, None] * m[ei[0]])
    ref = torch.nn.functional.normalize(torch.relu(conv.lin2(torch.cat([x[:5], agg], -1))), dim=-1)
    ref.square().sum().backward()
    assert torch.allclose(out, ref, atol=1e-6)
    assert torch.allclose(grad, x.grad, atol=1e-5)
    adj = weighted_adjacency(ei, w, num_sources=7, num_targets=5)
    assert torch.allclose(adj.to_dense()[0], torch.tensor([0, 0.5, 3.0, 0, 0, 0, 0]))
    # Deterministic: bit-identical repeats under deterministic algorithms.
    prev = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        assert torch.equal(conv(x, ei, w, num_targets=5), conv(x, ei, w, num_targets=5))
    finally:
        torch.use_deterministic_algorithms(prev)
    with pytest.raises(ValueError, match="num_targets=3"):
        weighted_adjacency(ei, w, num_sources=7, num_targets=3)


def test_dropout_zeroes_a_fraction_p_and_scales_the_rest_like_torch():
    from vidsage_core.model import dropout

    x = torch.full((400, 500), 3.0, requires_grad=True)
    torch.manual_seed(0)
    y = dropout(x, 0.5, training=True)
    kept = y != 0
    # Kept entries are scaled by 1 / (1 - p), as F.dropout's inverted dropout: 3 -> 6.
    assert torch.equal(y[kept], torch.full_like(y[kept], 6.0))
    # 200,000 Bernoulli(0.5) draws: the kept share is 0.5 within 5 standard deviations (0.0056).
    assert abs(kept.float().mean().item() - 0.5) < 0.0056
    y.sum().backward()  # the gradient is the same mask and scale
    assert torch.equal(x.grad, kept.float() * 2.0)
    torch.manual_seed(0)
    assert torch.equal(dropout(x, 0.5, training=True), y)  # one seed, one mask
    z = torch.randn(30, 7)
    assert torch.equal(dropout(z, 0.5, training=False), z)
    assert torch.equal(dropout(z, 0.0, training=True), z)
    assert torch.equal(dropout(z, 1.0, training=True), torch.zeros_like(z))
    p = 0.2  # mean preserved at another p: E[y] = x
    w = dropout(torch.ones(1000, 1000), p, training=True)
    assert abs(w.mean().item() - 1.0) < 5 * (p / (1 - p) / 1e6) ** 0.5
