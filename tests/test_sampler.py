"""Tests for vidsage_core.sampler: fan-outs, relabelling, uniformity, PyG contract, loaders."""

from __future__ import annotations

import itertools
from collections import Counter

import numpy as np
import pytest
import torch
from scipy.stats import chisquare
from torch_geometric.data import Data
from torch_geometric.loader import NodeLoader
from torch_geometric.sampler import BaseSampler, NodeSamplerInput, SamplerOutput

from vidsage_core.model import build_model
from vidsage_core.sampler import (NeighborSampler, SampledSubgraph, csr_from_edge_index,
                                  full_graph_batch, make_loader, pyg_backend_available)


def random_graph(n: int, p: float, seed: int):
    """Symmetric random graph with distinct positive weights per undirected edge."""
    g = torch.Generator().manual_seed(seed)
    a = torch.triu(torch.rand(n, n, generator=g) < p, 1)
    src, dst = a.nonzero(as_tuple=True)
    w = torch.rand(src.numel(), generator=g) + 0.1
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    return ei, torch.cat([w, w])


class FakeVideoGraph:
    """The part of VideoGraph the sampler uses: ``csr()`` (kept local so tests stand alone)."""

    def __init__(self, edge_index, edge_weight, num_nodes):
        self.edge_index, self.edge_weight, self.num_nodes = edge_index, edge_weight, num_nodes

    def csr(self):
        return csr_from_edge_index(self.edge_index, self.edge_weight, self.num_nodes)


N = 200
EI, EW = random_graph(N, 0.08, seed=0)  # mean degree ≈ 16, some nodes above each fan-out
GRAPH = FakeVideoGraph(EI, EW, N)
EDGE_W = {(int(s), int(d)): float(w) for s, d, w in zip(EI[0], EI[1], EW)}
DEG = torch.bincount(EI[1], minlength=N)


def test_seeds_first_and_edges_exist_with_weights():
    sampler = NeighborSampler(GRAPH, fanouts=(10, 5), seed=0)
    assert sampler.backend == "vidsage"
    sub = sampler.sample(torch.tensor([5, 3, 77, 10]))
    assert isinstance(sub, SampledSubgraph)
    assert sub.batch_size == 4 and sub.n_id[:4].tolist() == [5, 3, 77, 10]
    assert torch.unique(sub.n_id).numel() == sub.n_id.numel()
    assert sub.edge_index.dtype == torch.long and sub.edge_index.shape[0] == 2
    assert int(sub.edge_index.max()) < sub.num_nodes
    glob = sub.n_id[sub.edge_index]  # relabelling maps back to true edges, source -> target
    for (s, d), w in zip(glob.T.tolist(), sub.edge_weight.tolist()):
        assert (s, d) in EDGE_W and EDGE_W[(s, d)] == pytest.approx(w)
    # No edge drawn twice without replacement.
    assert len(set(map(tuple, sub.edge_index.T.tolist()))) == sub.edge_index.shape[1]
    assert sub.num_sampled_nodes[0] == 4 and sum(sub.num_sampled_nodes) == sub.num_nodes
    assert sum(sub.num_sampled_edges) == sub.edge_index.shape[1]


@pytest.mark.parametrize("fanouts", [(25, 10), (3, 2), (-1, 4)])
def test_fanout_exactly_min_of_fanout_and_degree(fanouts):
    sampler = NeighborSampler(GRAPH, fanouts=fanouts, seed=1)
    seeds = torch.arange(0, N, 7)
    sub = sampler.sample(seeds)
    e1 = sub.num_sampled_edges[0]
    hop_edges = [sub.edge_index[:, :e1], sub.edge_index[:, e1:]]
    b, n1 = sub.batch_size, sub.num_sampled_nodes[1]
    hop_targets = [torch.arange(b), torch.arange(b, b + n1)]  # seeds, then new hop-1 nodes
    for f, edges, targets in zip(fanouts, hop_edges, hop_targets):
        counts = torch.bincount(edges[1], minlength=sub.num_nodes)[targets]
        deg = DEG[sub.n_id[targets]]
        want = deg if f < 0 else torch.clamp(deg, max=f)
        assert torch.equal(counts, want)
        assert set(edges[1].tolist()) <= set(targets.tolist())
    # Targets are grouped in ascending local id (PyG's CSC layout).
    assert bool((sub.edge_index[1][1:] >= sub.edge_index[1][:-1]).all())


def test_replace_draws_exactly_fanout():
    sub = NeighborSampler(GRAPH, fanouts=(30,), seed=0, replace=True).sample(torch.arange(20))
    counts = torch.bincount(sub.edge_index[1], minlength=20)
    assert torch.equal(counts, torch.where(DEG[:20] > 0, 30, 0))
    glob = sub.n_id[sub.edge_index]
    assert all((s, d) in EDGE_W for s, d in glob.T.tolist())


def test_uniform_without_replacement_on_stars():
    # 400 disjoint stars, centre c and 20 leaves each; fan-out 5 from every centre per call.
    stars, leaves, k = 400, 20, 5
    centres = torch.arange(stars) * (leaves + 1)
    src = centres.repeat_interleave(leaves)
    dst = src + torch.arange(1, leaves + 1).repeat(stars)
    ei = torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1)
    sampler = NeighborSampler(csr_from_edge_index(ei, None, stars * (leaves + 1)),
                              fanouts=(k,), seed=123)
    slot_counts = np.zeros(leaves, dtype=np.int64)
    pair_counts: Counter = Counter()
    draws = 0
    for _ in range(5):
        sub = sampler.sample(centres)
        glob = sub.n_id[sub.edge_index]
        leaf_slot = (glob[0] - glob[1] - 1).view(stars, k)  # leaf index 0..19 per star
        assert bool((leaf_slot.sort(1).values.diff(dim=1) > 0).all())  # distinct per draw
        slot_counts += np.bincount(leaf_slot.reshape(-1).numpy(), minlength=leaves)
        for row in leaf_slot.tolist():
            pair_counts.update(itertools.combinations(sorted(row), 2))
        draws += stars
    # Marginals: each leaf in k/leaves of the draws.
    assert chisquare(slot_counts).pvalue > 1e-3
    # Pairs: a uniform k-subset contains a given pair with prob C(18,3)/C(20,5) for all pairs.
    pairs = list(itertools.combinations(range(leaves), 2))
    observed = np.array([pair_counts[p] for p in pairs])
    assert observed.sum() == draws * k * (k - 1) // 2
    assert chisquare(observed).pvalue > 1e-3


def test_deterministic_for_seed():
    seeds = torch.tensor([1, 2, 3, 50, 60])
    a = NeighborSampler(GRAPH, seed=7).sample(seeds)
    b = NeighborSampler(GRAPH, seed=7).sample(seeds)
    c = NeighborSampler(GRAPH, fanouts=(3, 2), seed=8).sample(seeds)
    d = NeighborSampler(GRAPH, fanouts=(3, 2), seed=9).sample(seeds)
    assert torch.equal(a.n_id, b.n_id) and torch.equal(a.edge_index, b.edge_index)
    assert torch.equal(a.edge_weight, b.edge_weight)
    assert not (c.n_id.numel() == d.n_id.numel() and torch.equal(c.edge_index, d.edge_index))


def test_input_validation():
    sampler = NeighborSampler(GRAPH)
    with pytest.raises(ValueError, match="duplicates"):
        sampler.sample(torch.tensor([1, 1]))
    with pytest.raises(ValueError, match="seed ids"):
        sampler.sample(torch.tensor([N]))
    with pytest.raises(ValueError, match="fanouts"):
        NeighborSampler(GRAPH, fanouts=(0, 3))
    with pytest.raises(TypeError, match="VideoGraph"):
        NeighborSampler(EI)


def test_isolated_seed_and_tuple_input():
    ei = torch.tensor([[0, 1], [1, 0]])
    rowptr, col, w = csr_from_edge_index(ei, None, 3)  # node 2 isolated
    sub = NeighborSampler((rowptr, col), fanouts=(5, 5)).sample(torch.tensor([2, 0]))
    assert sub.n_id.tolist() == [2, 0, 1]
    # hop 1: the isolated seed gets nothing, seed 0 gets 1 -> 0 (local 2 -> 1);
    # hop 2: the new node 1 gets 0 -> 1 (local 1 -> 2).
    assert sub.edge_index.tolist() == [[2, 1], [1, 2]]
    assert sub.edge_weight.tolist() == [1.0, 1.0]
    assert sub.num_sampled_edges == [1, 1]


class _VidSageAsPygSampler(BaseSampler):
    """Our sampler behind PyG's BaseSampler interface, to run it through PyG's NodeLoader."""

    def __init__(self, sampler: NeighborSampler):
        self.sampler = sampler

    def sample_from_nodes(self, inputs: NodeSamplerInput) -> SamplerOutput:
        sub = self.sampler.sample(inputs.node)
        return SamplerOutput(node=sub.n_id, row=sub.edge_index[0], col=sub.edge_index[1],
                             edge=sub.e_id, num_sampled_nodes=sub.num_sampled_nodes,
                             num_sampled_edges=sub.num_sampled_edges,
                             metadata=(inputs.input_id, inputs.time))

    def sample_from_edges(self, inputs, neg_sampling=None):  # abstract in BaseSampler; unused
        raise NotImplementedError("node sampling only")


def test_contract_matches_pyg_node_loader_output():
    # PyG's NodeLoader turns a SamplerOutput (node, row=source, col=target, edge ids) into the
    # Data batch that NeighborLoader yields. Feeding it our sample must give back our fields,
    # with edge_weight filtered by e_id from the same edge layout the "pyg" backend builds.
    loader = make_loader(GRAPH, torch.arange(N), batch_size=16, shuffle=False, backend="vidsage")
    s = loader._sampler
    row = torch.repeat_interleave(torch.arange(N), s.rowptr[1:] - s.rowptr[:-1])
    data = Data(edge_index=torch.stack([s.col, row]), edge_weight=s.weight, num_nodes=N)
    seeds = torch.arange(16)
    ours = NeighborSampler(GRAPH, seed=3).sample(seeds)
    pyg_loader = NodeLoader(data, node_sampler=_VidSageAsPygSampler(NeighborSampler(GRAPH, seed=3)),
                            input_nodes=seeds, batch_size=16, shuffle=False)
    batch = next(iter(pyg_loader))
    assert torch.equal(batch.n_id, ours.n_id)
    assert int(batch.batch_size) == ours.batch_size
    assert torch.equal(batch.edge_index, ours.edge_index)
    assert torch.equal(batch.edge_weight, ours.edge_weight)
    assert torch.equal(batch.e_id, ours.e_id)
    assert batch.num_sampled_nodes == ours.num_sampled_nodes
    # e_id indexes the Data's global edge list: same edges as the relabelled local ones.
    assert torch.equal(data.edge_index[:, batch.e_id], ours.n_id[ours.edge_index])


@pytest.mark.skipif(not pyg_backend_available(),
                    reason="PyG NeighborLoader needs pyg-lib or torch-sparse, not installed here")
def test_pyg_backend_yields_same_contract():
    loader = make_loader(GRAPH, torch.arange(40), batch_size=16, fanouts=(4, 3), seed=0,
                         backend="pyg")
    assert loader.backend == "pyg"
    seen = []
    for sub in loader:
        seen.append(sub.n_id[: sub.batch_size])
        glob = sub.n_id[sub.edge_index]
        assert all((s, d) in EDGE_W for s, d in glob.T.tolist())
        counts = torch.bincount(sub.edge_index[1], minlength=sub.num_nodes)[: sub.batch_size]
        assert torch.equal(counts, torch.clamp(DEG[sub.n_id[: sub.batch_size]], max=4))
    assert sorted(torch.cat(seen).tolist()) == list(range(40))


def test_make_loader_epochs_cover_seeds_and_resume():
    seeds = torch.arange(3, 103)
    loader = make_loader(GRAPH, seeds, batch_size=32, fanouts=(4, 2), seed=5)
    assert loader.backend == ("pyg" if pyg_backend_available() else "vidsage")
    loader = make_loader(GRAPH, seeds, batch_size=32, fanouts=(4, 2), seed=5, backend="vidsage")
    assert len(loader) == 4
    epoch0 = list(loader)
    epoch1 = list(loader)
    assert [b.batch_size for b in epoch0] == [32, 32, 32, 4]
    for epoch in (epoch0, epoch1):
        assert sorted(torch.cat([b.seed_nodes for b in epoch]).tolist()) == seeds.tolist()
    assert not torch.equal(epoch0[0].seed_nodes, epoch1[0].seed_nodes)  # reshuffled
    # A fresh loader set to epoch 1 reproduces epoch 1 exactly (resumable training).
    again = make_loader(GRAPH, seeds, batch_size=32, fanouts=(4, 2), seed=5, backend="vidsage")
    again.set_epoch(1)
    for x, y in zip(epoch1, list(again)):
        assert torch.equal(x.n_id, y.n_id) and torch.equal(x.edge_index, y.edge_index)
    unshuffled = make_loader(GRAPH, seeds, batch_size=50, shuffle=False, backend="vidsage")
    assert torch.equal(next(iter(unshuffled)).seed_nodes, seeds[:50])


def test_full_graph_batch():
    full = full_graph_batch(GRAPH)
    assert full.batch_size == N and torch.equal(full.n_id, torch.arange(N))
    assert {(int(s), int(d)) for s, d in full.edge_index.T} == set(EDGE_W)
    for (s, d), w in zip(full.edge_index.T.tolist(), full.edge_weight.tolist()):
        assert EDGE_W[(s, d)] == pytest.approx(w)


# GCN is left out on purpose: its symmetric normalisation uses the degrees of hop-2 nodes,
# which the sampled subgraph truncates, so its outputs differ from the full graph by design.
@pytest.mark.parametrize("name", ["vidsage", "sage-mean", "sage-max", "sage-sum", "gat"])
def test_full_fanout_subgraph_reproduces_full_graph_output(name):
    n = 300
    ei, ew = random_graph(n, 0.012, seed=4)  # sparse: 2 hops reach only part of the graph
    graph = FakeVideoGraph(ei, ew, n)
    x = torch.randn(n, 12, generator=torch.Generator().manual_seed(0))
    max_deg = int(torch.bincount(ei[1], minlength=n).max())
    torch.manual_seed(0)
    model = build_model(name, 12, 8, 8, heads=2).eval()
    full = full_graph_batch(graph)
    z_full = model(x, full.edge_index, full.edge_weight)
    seeds = torch.tensor([0, 17, 42, 99, 150, 199])
    sub = NeighborSampler(graph, fanouts=(max_deg, max_deg), seed=0).sample(seeds)
    assert sub.num_nodes < n // 2  # a real subgraph, not the whole graph
    z_sub = model(x[sub.n_id], sub.edge_index, sub.edge_weight)[: sub.batch_size]
    assert torch.allclose(z_sub, z_full[seeds], atol=1e-5)
