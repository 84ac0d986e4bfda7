"""Tests for vidsage_core.losses: hand-computed loss values, gradients, and the samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.stats import chisquare

from vidsage_core.losses import (DEFAULT_TEMPERATURE, contrastive_loss, negative_sampling_loss,
                                 sample_negatives, sample_positives, triplet_loss)
from vidsage_core.sampler import csr_from_edge_index


def softplus(x: float) -> float:  # −log σ(−x)
    return math.log(1.0 + math.exp(x))


# ------------------------------------------------------------------- negative sampling loss

def test_negative_sampling_loss_hand_value():
    z_u = torch.tensor([[1.0, 0.0]])
    z_pos = torch.tensor([[0.6, 0.8]])
    z_neg = torch.tensor([[[0.0, 1.0], [-1.0, 0.0]]])  # Q = 2
    # τ = 1: logits pos 0.6, neg 0 and −1.
    # −log σ(0.6) − log σ(−0) − log σ(1) = log(1+e^−0.6) + log 2 + log(1+e^−1)
    expected = math.log(1 + math.exp(-0.6)) + math.log(2) + math.log(1 + math.exp(-1))
    assert expected == pytest.approx(0.437488 + 0.693147 + 0.313262, abs=1e-5)
    got = negative_sampling_loss(z_u, z_pos, z_neg, temperature=1.0)
    assert float(got) == pytest.approx(expected, rel=1e-6)
    # τ = 0.5 doubles the logits: 1.2, 0, −2.
    expected_half = math.log(1 + math.exp(-1.2)) + math.log(2) + math.log(1 + math.exp(-2))
    got = negative_sampling_loss(z_u, z_pos, z_neg, temperature=0.5)
    assert float(got) == pytest.approx(expected_half, rel=1e-6)


def test_negative_sampling_loss_matches_bce_sum_and_batch_mean():
    g = torch.Generator().manual_seed(0)
    b, q, d = 5, 4, 3
    z_u, z_pos = torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)
    z_neg = torch.randn(b, q, d, generator=g)
    tau = 0.2
    pos = (z_u * z_pos).sum(1) / tau
    neg = torch.einsum("bd,bqd->bq", z_u, z_neg) / tau
    # GraphSAGE: BCE(label 1) on positives + Σ over Q of BCE(label 0), divided by batch size.
    ref = (F.binary_cross_entropy_with_logits(pos, torch.ones(b), reduction="sum")
           + F.binary_cross_entropy_with_logits(neg, torch.zeros(b, q), reduction="sum")) / b
    assert torch.allclose(negative_sampling_loss(z_u, z_pos, z_neg, temperature=tau), ref)


def test_negative_sampling_loss_shared_negatives_and_masks():
    g = torch.Generator().manual_seed(1)
    z_u, z_pos = torch.randn(3, 4, generator=g), torch.randn(3, 4, generator=g)
    shared = torch.randn(5, 4, generator=g)
    per_row = shared.unsqueeze(0).expand(3, 5, 4)
    assert torch.allclose(negative_sampling_loss(z_u, z_pos, shared),
                          negative_sampling_loss(z_u, z_pos, per_row))
    # Masking row 1 == computing on rows 0 and 2 only.
    mask = torch.tensor([True, False, True])
    assert torch.allclose(negative_sampling_loss(z_u, z_pos, per_row, pos_mask=mask),
                          negative_sampling_loss(z_u[[0, 2]], z_pos[[0, 2]], per_row[[0, 2]]))
    # Masking a negative == dropping it from the sum.
    neg_mask = torch.ones(3, 5, dtype=torch.bool)
    neg_mask[:, 4] = False
    assert torch.allclose(negative_sampling_loss(z_u, z_pos, per_row, neg_mask=neg_mask),
                          negative_sampling_loss(z_u, z_pos, per_row[:, :4]))


def test_default_temperature_lets_loss_approach_zero():
    # A perfect configuration on the unit sphere: positive identical, negative opposite.
    z_u = torch.tensor([[1.0, 0.0]])
    z_pos = torch.tensor([[1.0, 0.0]])
    z_neg = torch.tensor([[[-1.0, 0.0]]])
    at_default = float(negative_sampling_loss(z_u, z_pos, z_neg))
    at_one = float(negative_sampling_loss(z_u, z_pos, z_neg, temperature=1.0))
    assert DEFAULT_TEMPERATURE == 0.1
    assert at_default == pytest.approx(2 * softplus(-10.0), rel=1e-5) and at_default < 1e-3
    assert at_one == pytest.approx(2 * softplus(-1.0), rel=1e-5)  # 0.63: the τ=1 floor


# ------------------------------------------------------------------------------ triplet loss

def test_triplet_loss_hand_value():
    z_q = torch.tensor([[0.0, 0.0], [0.0, 0.0]])
    z_pos = torch.tensor([[3.0, 4.0], [0.0, 2.0]])
    z_neg = torch.tensor([[6.0, 8.0], [1.0, 0.0]])
    # row 0: max(5 − 10 + 0.5, 0) = 0;  row 1: max(2 − 1 + 0.5, 0) = 1.5;  mean 0.75
    assert float(triplet_loss(z_q, z_pos, z_neg, margin=0.5)) == pytest.approx(0.75)
    # margin 6: row 0: 5 − 10 + 6 = 1, row 1: 2 − 1 + 6 = 7, mean 4
    assert float(triplet_loss(z_q, z_pos, z_neg, margin=6.0)) == pytest.approx(4.0)
    assert float(triplet_loss(z_q, z_pos, z_neg, 0.5, mask=torch.tensor([True, False]))) == 0.0
    # [B, Q, d] negatives: each triplet counts.
    negs = torch.stack([z_neg, z_neg + torch.tensor([0.0, 10.0])], 1)
    # extra triplets: row 0 neg (6, 18) dist √360 -> 0; row 1 neg (1, 10) dist √101 -> 0
    assert float(triplet_loss(z_q, z_pos, negs, margin=0.5)) == pytest.approx(1.5 / 4)


def test_triplet_loss_gradient_finite_when_positive_is_self():
    z = torch.tensor([[0.6, 0.8]], requires_grad=True)
    loss = triplet_loss(z, z, torch.tensor([[1.0, 0.0]]), margin=1.0)
    loss.backward()
    assert torch.isfinite(z.grad).all()


# -------------------------------------------------------------------------- contrastive loss

def test_contrastive_loss_hand_values():
    eye = torch.eye(2)
    # logits = I: each row −log(e¹ / (e¹ + e⁰)) = log(1 + e^−1)
    assert float(contrastive_loss(eye, eye, temperature=1.0)) == pytest.approx(
        math.log(1 + math.exp(-1)), rel=1e-6)
    z_v = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    # u->v logits [[1, 1], [0, 0]]: both rows log 2.
    # v->u logits [[1, 0], [1, 0]]: row 0 log(1 + e^−1), row 1 log(1 + e).
    u2v = math.log(2)
    v2u = 0.5 * (math.log(1 + math.exp(-1)) + math.log(1 + math.e))
    assert float(contrastive_loss(eye, z_v, 1.0, symmetric=False)) == pytest.approx(u2v, rel=1e-6)
    assert float(contrastive_loss(eye, z_v, 1.0)) == pytest.approx(0.5 * (u2v + v2u), rel=1e-6)


def test_contrastive_loss_matches_sklearn_log_loss():
    from sklearn.metrics import log_loss

    g = torch.Generator().manual_seed(2)
    z_u = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    z_v = F.normalize(torch.randn(6, 4, generator=g), dim=1)
    probs = torch.softmax((z_u @ z_v.T).double() / 0.3, dim=1).numpy()
    ref = log_loss(np.arange(6), probs, labels=np.arange(6))
    got = float(contrastive_loss(z_u, z_v, temperature=0.3, symmetric=False))
    assert got == pytest.approx(ref, rel=1e-5)


# ------------------------------------------------------------------------ gradient direction

@pytest.mark.parametrize("which", ["negative_sampling", "triplet", "contrastive"])
def test_sgd_step_decreases_loss_and_moves_pairs(which):
    g = torch.Generator().manual_seed(3)
    raw = torch.randn(6, 8, generator=g, requires_grad=True)  # rows 0-2 anchors, 3-5 partners

    def loss_and_dots():
        z = F.normalize(raw, dim=1)
        u, p = z[:3], z[3:]
        neg = p.roll(1, 0)  # each anchor's negative: another anchor's partner
        if which == "negative_sampling":
            loss = negative_sampling_loss(u, p, neg.unsqueeze(1))
        elif which == "triplet":
            loss = triplet_loss(u, p, neg, margin=1.0)
        else:
            loss = contrastive_loss(u, p)
        return loss, (u * p).sum(1).detach(), (u * neg).sum(1).detach()

    loss0, pos0, neg0 = loss_and_dots()
    loss0.backward()
    with torch.no_grad():
        raw -= 0.05 * raw.grad
    loss1, pos1, neg1 = loss_and_dots()
    assert loss1.item() < loss0.item()
    assert float(pos1.mean()) > float(pos0.mean())  # positives pulled together
    assert float(neg1.mean()) < float(neg0.mean())  # negatives pushed apart


# ---------------------------------------------------------------------------------- samplers

def path_with_isolated():
    # 0-1-2-3 path plus isolated node 4 (undirected).
    ei = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    rowptr, col, _ = csr_from_edge_index(ei, None, 5)
    return rowptr, col


def test_sample_positives_returns_neighbours_and_flags_isolated():
    rowptr, col = path_with_isolated()
    nodes = torch.tensor([0, 1, 2, 3, 4] * 40)
    pos, valid = sample_positives(rowptr, col, nodes, generator=torch.Generator().manual_seed(0))
    adj = {(0, 1), (1, 0), (1, 2), (2, 1), (2, 3), (3, 2)}
    for u, v, ok in zip(nodes.tolist(), pos.tolist(), valid.tolist()):
        if u == 4:
            assert v == 4 and not ok
        else:
            assert (u, v) in adj and ok
    # Both neighbours of node 1 are drawn.
    assert set(pos[nodes == 1].tolist()) == {0, 2}


def test_sample_positives_random_walk_endpoints():
    rowptr, col = path_with_isolated()
    a = torch.zeros(5, 5)
    a[[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]] = 1
    two_step = (a @ a) > 0
    nodes = torch.tensor([0, 1, 2, 3] * 50)
    gen = torch.Generator().manual_seed(1)
    end, valid = sample_positives(rowptr, col, nodes, walk_length=2, generator=gen)
    assert bool(two_step[nodes, end].all())  # every endpoint is reachable in exactly 2 steps
    assert torch.equal(valid, end != nodes)  # walks that came back are not positives
    assert set(end[nodes == 1].tolist()) == {1, 3}


def test_sample_positives_deterministic():
    rowptr, col = path_with_isolated()
    nodes = torch.arange(5).repeat(10)
    a = sample_positives(rowptr, col, nodes, 3, torch.Generator().manual_seed(5))
    b = sample_positives(rowptr, col, nodes, 3, torch.Generator().manual_seed(5))
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])


def dense_random_graph(n=30, p=0.4, seed=0):
    g = torch.Generator().manual_seed(seed)
    a = torch.triu(torch.rand(n, n, generator=g) < p, 1)
    a = a | a.T
    src, dst = a.nonzero(as_tuple=True)
    rowptr, col, _ = csr_from_edge_index(torch.stack([src, dst]), None, n)
    return a, rowptr, col


def test_sample_negatives_never_neighbours_and_deterministic():
    a, rowptr, col = dense_random_graph()
    anchors = torch.arange(30).repeat(4)
    for dist in ("uniform", "degree"):
        neg, valid = sample_negatives(30, (anchors.numel(), 7), torch.Generator().manual_seed(0),
                                      rowptr, col, anchors=anchors, distribution=dist)
        assert valid.all()
        assert not a[anchors.unsqueeze(1).expand_as(neg), neg].any()  # no neighbour drawn
        assert not (neg == anchors.unsqueeze(1)).any()  # nor the anchor itself
        neg2, _ = sample_negatives(30, (anchors.numel(), 7), torch.Generator().manual_seed(0),
                                   rowptr, col, anchors=anchors, distribution=dist)
        assert torch.equal(neg, neg2)


def test_sample_negatives_flags_impossible_rows():
    # Star: centre 0 is adjacent to every other node, so it has no non-neighbour at all.
    src = torch.zeros(5, dtype=torch.long)
    dst = torch.arange(1, 6)
    rowptr, col, _ = csr_from_edge_index(
        torch.cat([torch.stack([src, dst]), torch.stack([dst, src])], 1), None, 6)
    neg, valid = sample_negatives(6, (2, 4), torch.Generator().manual_seed(0), rowptr, col,
                                  anchors=torch.tensor([0, 1]), distribution="uniform")
    assert not valid[0].any()
    assert valid[1].all() and set(neg[1].tolist()) <= {2, 3, 4, 5}


def test_sample_negatives_degree_distribution():
    # Degrees 1..4 on a small graph; P_n(v) ∝ deg^0.75 (GraphSAGE).
    ei = torch.tensor([[0, 1, 1, 2, 2, 2, 3, 3, 3, 3],
                       [4, 5, 6, 5, 6, 7, 4, 5, 6, 7]])
    ei = torch.cat([ei, ei.flip(0)], 1)
    rowptr, col, _ = csr_from_edge_index(ei, None, 8)
    deg = (rowptr[1:] - rowptr[:-1]).double()
    neg, valid = sample_negatives(8, 20000, torch.Generator().manual_seed(0), rowptr, col)
    assert valid.all()
    counts = np.bincount(neg.numpy(), minlength=8)
    expected = (deg.pow(0.75) / deg.pow(0.75).sum()).numpy() * 20000
    assert chisquare(counts, expected).pvalue > 1e-3
    # Uniform without a graph.
    neg_u, _ = sample_negatives(8, (4000, 5), torch.Generator().manual_seed(1))
    assert neg_u.shape == (4000, 5) and int(neg_u.min()) >= 0 and int(neg_u.max()) < 8
    assert chisquare(np.bincount(neg_u.reshape(-1).numpy(), minlength=8)).pvalue > 1e-3


def test_sample_negatives_argument_errors():
    _, rowptr, col = dense_random_graph(10)
    with pytest.raises(ValueError, match="rowptr"):
        sample_negatives(10, 5, distribution="degree")
    with pytest.raises(ValueError, match="anchors"):
        sample_negatives(10, (3, 2), rowptr=rowptr, col=col, anchors=torch.arange(4))
