"""Unsupervised objectives (paper §3.3) and the positive / negative samplers they need.

- :func:`negative_sampling_loss`: GraphSAGE's objective, the paper's main one,
  ``J(z_u) = −log σ(z_uᵀz_v / τ) − Q · E_{v_n ~ P_n} log σ(−z_uᵀz_{v_n} / τ)``.
- :func:`triplet_loss`: ``max(‖q − pos‖ − ‖q − neg‖ + margin, 0)``.
- :func:`contrastive_loss`: InfoNCE / NT-Xent with in-batch negatives ("we also explored
  contrastive loss").

Temperature. The encoders output unit-norm rows, so ``z_uᵀz_v ∈ [−1, 1]`` (``[0, 1]`` with the
paper's final ReLU). At logit scale 1 (τ = 1, which is what GraphSAGE's reference code does: it
L2-normalises outputs and uses the raw dot product) the sigmoid cannot leave [0.27, 0.73]: the
best possible positive term is ``log(1 + e^{−1}) = 0.313`` and every pair, however well placed,
keeps pulling with a near-constant gradient, so the objective cannot separate neighbours from
non-neighbours sharply. We divide the dot products by τ = 0.1 by default (logits in [−10, 10],
σ(10) = 0.99995), the usual choice for contrastive learning on the unit sphere (SimCLR /
Wang & Isola use τ ∈ [0.05, 0.5]): well-separated pairs stop contributing and the loss can approach
its floor. ``temperature=1.0`` reproduces GraphSAGE exactly.

Samplers work on a CSR adjacency ``(rowptr [N+1], col [E])`` as returned by
``VideoGraph.csr()`` (neighbours of ``i`` are ``col[rowptr[i]:rowptr[i+1]]``). Both return a
``(nodes, valid)`` pair: ``valid`` flags entries the loss must mask (a node without neighbours
has no positive; a negative that could not be drawn from the non-neighbours).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

DEFAULT_TEMPERATURE = 0.1  # logit scale 10 for unit-norm embeddings; see the module docstring


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` [B] over rows where ``mask`` is True (0 when no row is valid)."""
    if mask is None:
        return values.mean()
    mask = mask.to(values.device, torch.bool)
    if mask.shape != values.shape:
        raise ValueError(f"mask shape {tuple(mask.shape)} != per-row loss shape "
                         f"{tuple(values.shape)}")
    # Sum / clamp keeps the graph connected (zero gradient) even when every row is masked.
    return (values * mask).sum() / mask.sum().clamp_min(1)


def negative_sampling_loss(
    z_u: Tensor,
    z_pos: Tensor,
    z_neg: Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    pos_mask: Tensor | None = None,
    neg_mask: Tensor | None = None,
) -> Tensor:
    """GraphSAGE's unsupervised loss with Q negatives, averaged over the batch.

    Per anchor ``u``::

        −log σ(s·z_uᵀz_v) − Σ_{n=1..Q} log σ(−s·z_uᵀz_{v_n}),   s = 1 / temperature

    The negative term is a SUM over the Q samples, i.e. ``Q · (mean over Q)``, the Monte-Carlo
    form of ``Q · E_{v_n ~ P_n}`` and exactly GraphSAGE's reference code
    (``reduce_sum(true_xent) + neg_sample_weights · reduce_sum(negative_xent)``, divided by the
    batch size).

    Args:
        z_u: anchors, float ``[B, d]``.
        z_pos: positives, float ``[B, d]``.
        z_neg: negatives, float ``[B, Q, d]`` (per anchor) or ``[Q, d]`` (shared by the batch,
            as GraphSAGE does).
        temperature: τ; logits are dot products divided by τ.
        pos_mask: bool ``[B]``; False drops the whole row (e.g. an anchor without neighbours).
        neg_mask: bool ``[B, Q]`` (or ``[Q]`` for shared negatives); False drops that negative.

    Returns:
        Scalar loss (mean over valid rows).
    """
    if temperature <= 0:
        raise ValueError(f"negative_sampling_loss: temperature must be > 0, got {temperature}")
    if z_u.shape != z_pos.shape:
        raise ValueError(f"z_u {tuple(z_u.shape)} and z_pos {tuple(z_pos.shape)} must match")
    pos_logit = (z_u * z_pos).sum(-1) / temperature  # [B]
    if z_neg.dim() == 2:
        neg_logit = z_u @ z_neg.T / temperature  # [B, Q]
    elif z_neg.dim() == 3:
        neg_logit = torch.einsum("bd,bqd->bq", z_u, z_neg) / temperature
    else:
        raise ValueError(f"z_neg must be [Q, d] or [B, Q, d], got {tuple(z_neg.shape)}")
    # −log σ(x) = softplus(−x), numerically stable for large |x|.
    pos_term = F.softplus(-pos_logit)
    neg_terms = F.softplus(neg_logit)
    if neg_mask is not None:
        neg_terms = neg_terms * neg_mask.to(neg_terms.device, neg_terms.dtype).expand_as(neg_terms)
    return _masked_mean(pos_term + neg_terms.sum(-1), pos_mask)


def triplet_loss(
    z_q: Tensor,
    z_pos: Tensor,
    z_neg: Tensor,
    margin: float = 0.5,
    mask: Tensor | None = None,
) -> Tensor:
    """Triplet margin loss ``max(dis(q, pos) − dis(q, neg) + margin, 0)``, dis = Euclidean.

    For unit-norm rows distances lie in [0, 2] (``[0, √2]`` for non-negative embeddings), so the
    default margin 0.5 is a quarter / a third of the range.

    Args:
        z_q: queries, float ``[B, d]``.
        z_pos: positives (a random neighbour of q), float ``[B, d]``.
        z_neg: negatives (non-adjacent), float ``[B, d]`` or ``[B, Q, d]`` (each of the Q
            triplets counts; the row's loss is their mean).
        margin: the margin.
        mask: bool ``[B]`` (False drops the row) or ``[B, Q]`` (drops single triplets).

    Returns:
        Scalar loss: mean over valid triplets.
    """

    def dist(a: Tensor, b: Tensor) -> Tensor:
        # sqrt with a floor: d‖a−b‖ is undefined at a == b (e.g. a node that is its own positive).
        return ((a - b) ** 2).sum(-1).clamp_min(1e-12).sqrt()

    if z_neg.dim() == 2:
        z_neg = z_neg.unsqueeze(1)
    if z_neg.dim() != 3 or z_neg.shape[0] != z_q.shape[0]:
        raise ValueError(f"z_neg must be [B, d] or [B, Q, d] with B={z_q.shape[0]}, "
                         f"got {tuple(z_neg.shape)}")
    d_pos = dist(z_q, z_pos).unsqueeze(1)  # [B, 1]
    d_neg = dist(z_q.unsqueeze(1), z_neg)  # [B, Q]
    losses = F.relu(d_pos - d_neg + margin)  # [B, Q]
    if mask is None:
        return losses.mean()
    mask = mask.to(losses.device, torch.bool)
    if mask.dim() == 1:
        mask = mask.unsqueeze(1)
    mask = mask.expand_as(losses)
    return (losses * mask).sum() / mask.sum().clamp_min(1)


def contrastive_loss(
    z_u: Tensor,
    z_v: Tensor,
    temperature: float = DEFAULT_TEMPERATURE,
    symmetric: bool = True,
    mask: Tensor | None = None,
) -> Tensor:
    """InfoNCE / NT-Xent with in-batch negatives.

    Row ``i`` of ``z_v`` is the positive of row ``i`` of ``z_u``; the other ``B − 1`` rows of
    ``z_v`` are its negatives: ``ℓ_i = −log softmax_j(z_uᵢᵀz_vⱼ / τ)[i]``. With ``symmetric``
    the loss is averaged with the same term in the ``v -> u`` direction (CLIP-style). In-batch
    negatives may occasionally be true neighbours (false negatives); with batches of 512 out of
    thousands of videos that is rare, and it keeps the loss free of an extra sampler.

    Args:
        z_u: anchors, float ``[B, d]``.
        z_v: positives, float ``[B, d]``.
        temperature: τ.
        symmetric: average both directions.
        mask: bool ``[B]``; False rows are not used as anchors (they still act as negatives).

    Returns:
        Scalar loss.
    """
    if temperature <= 0:
        raise ValueError(f"contrastive_loss: temperature must be > 0, got {temperature}")
    if z_u.shape != z_v.shape:
        raise ValueError(f"z_u {tuple(z_u.shape)} and z_v {tuple(z_v.shape)} must match")
    logits = z_u @ z_v.T / temperature  # [B, B]
    target = torch.arange(z_u.shape[0], device=z_u.device)
    loss = _masked_mean(F.cross_entropy(logits, target, reduction="none"), mask)
    if symmetric:
        loss = 0.5 * (loss + _masked_mean(F.cross_entropy(logits.T, target, reduction="none"),
                                          mask))
    return loss


# ----------------------------------------------------------------------------- sampling helpers

def _degrees(rowptr: Tensor) -> Tensor:
    return rowptr[1:] - rowptr[:-1]


def sample_positives(
    rowptr: Tensor,
    col: Tensor,
    nodes: Tensor,
    walk_length: int = 1,
    generator: torch.Generator | None = None,
) -> tuple[Tensor, Tensor]:
    """Draw one positive per node: a uniform random neighbour, or a short random walk's end.

    Each step moves to a uniformly chosen neighbour of the current node (a node without
    neighbours stays put). As in GraphSAGE's co-occurrence pairs, an endpoint equal to the start
    node (no neighbours, or a walk that came back) is not a positive and is flagged invalid.

    Args:
        rowptr: long ``[N + 1]`` CSR row pointers.
        col: long ``[E]`` neighbour ids.
        nodes: long ``[B]`` anchors.
        walk_length: number of steps (1 = a random neighbour, the paper's "random neighbor of q").
        generator: torch RNG for determinism.

    Returns:
        (positives long ``[B]``, valid bool ``[B]``); invalid rows hold the anchor itself.
    """
    if walk_length < 1:
        raise ValueError(f"sample_positives: walk_length must be >= 1, got {walk_length}")
    rowptr, col = rowptr.long(), col.long()
    nodes = nodes.long().to(rowptr.device)
    if col.numel() == 0:
        return nodes.clone(), torch.zeros_like(nodes, dtype=torch.bool)
    deg = _degrees(rowptr)
    cur = nodes.clone()
    for _ in range(walk_length):  # loop over steps only; each step is vectorised over the batch
        d = deg[cur]
        r = torch.rand(cur.shape, generator=generator, device=rowptr.device)
        # floor(r·d) is uniform on {0..d-1}; the clamp guards r·d rounding up to d in float32.
        offset = torch.minimum((r * d).long(), (d - 1).clamp_min(0))
        # Isolated nodes point past their (empty) range: clamp the index, then keep them put.
        nxt = col[(rowptr[cur] + offset).clamp_max(col.numel() - 1)]
        cur = torch.where(d > 0, nxt, cur)
    return cur, cur != nodes


def _edge_keys(rowptr: Tensor, col: Tensor, rows: Tensor | None = None) -> Tensor:
    """Sorted int64 keys ``row · N + col`` of the CSR entries, for vectorised membership tests.

    Args:
        rowptr, col: CSR adjacency.
        rows: long ``[R]`` distinct rows whose entries to key (None: every row).
    """
    num_nodes = rowptr.numel() - 1
    if rows is None:
        row = torch.repeat_interleave(torch.arange(num_nodes, device=rowptr.device), _degrees(rowptr))
    else:
        starts, counts = rowptr[rows], rowptr[rows + 1] - rowptr[rows]
        row = torch.repeat_interleave(rows, counts)
        first = torch.cumsum(counts, 0) - counts  # position of each row's first entry in the output
        col = col[torch.repeat_interleave(starts - first, counts) + torch.arange(row.numel(), device=rowptr.device)]
    keys = row * num_nodes + col  # int64: exact up to ~3e9 nodes
    if keys.numel() > 1 and not bool((keys[1:] >= keys[:-1]).all()):
        keys = keys.sort().values  # VideoGraph CSR is already sorted; others may not be
    return keys


def _is_edge(keys: Tensor, num_nodes: int, src: Tensor, dst: Tensor) -> Tensor:
    """bool, same shape as ``src``: whether ``dst`` is in the neighbour list of ``src``."""
    if keys.numel() == 0:
        return torch.zeros_like(src, dtype=torch.bool)
    query = (src.long() * num_nodes + dst.long()).reshape(-1)
    pos = torch.searchsorted(keys, query).clamp_max(keys.numel() - 1)
    return (keys[pos] == query).reshape(src.shape)


def sample_negatives(
    num_nodes: int,
    shape: tuple[int, ...] | int,
    generator: torch.Generator | None = None,
    rowptr: Tensor | None = None,
    col: Tensor | None = None,
    anchors: Tensor | None = None,
    distribution: str | None = None,
    max_tries: int = 10,
) -> tuple[Tensor, Tensor]:
    """Draw negative nodes, uniformly or from GraphSAGE's ``P_n(v) ∝ degree(v)^0.75``.

    "Negatives are sampled from non-neighbours": with ``anchors`` [B] and the CSR adjacency,
    every draw that is a neighbour of (or equal to) its anchor is redrawn, up to ``max_tries``
    rounds; whatever is still invalid after that (an anchor adjacent to nearly everything) is
    flagged in the returned mask.

    Args:
        num_nodes: N; draws are in ``[0, N)``.
        shape: output shape, e.g. ``(B, Q)`` (first dim must be B when ``anchors`` is given) or
            ``Q`` for negatives shared across the batch.
        generator: torch RNG for determinism.
        rowptr: long ``[N + 1]``, optional (needed for ``degree`` and for neighbour exclusion).
        col: long ``[E]``, optional.
        anchors: long ``[B]``, optional; enables neighbour exclusion.
        distribution: ``"uniform"`` or ``"degree"`` (degree^0.75, GraphSAGE's P_n). None = the
            paper's P_n (``degree``) when ``rowptr`` is given, else ``uniform``.
        max_tries: redraw rounds for excluded draws.

    Returns:
        (negatives long ``shape``, valid bool ``shape``).
    """
    shape = (shape,) if isinstance(shape, int) else tuple(shape)
    if rowptr is not None and rowptr.numel() - 1 != num_nodes:
        raise ValueError(f"sample_negatives: num_nodes={num_nodes} but rowptr describes "
                         f"{rowptr.numel() - 1} nodes")
    if distribution is None:
        distribution = "degree" if rowptr is not None else "uniform"
    device = rowptr.device if rowptr is not None else torch.device("cpu")
    numel = 1
    for s in shape:
        numel *= s

    if distribution == "uniform":
        def draw(k: int) -> Tensor:
            return torch.randint(num_nodes, (k,), generator=generator, device=device)
    elif distribution == "degree":
        if rowptr is None:
            raise ValueError("sample_negatives: distribution='degree' needs rowptr")
        probs = _degrees(rowptr.long()).double().pow(0.75)
        if float(probs.sum()) == 0.0:
            probs = torch.ones_like(probs)  # edgeless graph: degree distribution undefined

        def draw(k: int) -> Tensor:
            return torch.multinomial(probs, k, replacement=True, generator=generator)
    else:
        raise ValueError(f"sample_negatives: distribution must be 'uniform' or 'degree', "
                         f"got {distribution!r}")

    neg = draw(numel).reshape(shape)
    valid = torch.ones(shape, dtype=torch.bool, device=device)
    if anchors is None:
        return neg, valid
    if rowptr is None or col is None:
        raise ValueError("sample_negatives: anchors given but rowptr/col missing")
    anchors = anchors.long().to(device)
    if len(shape) == 0 or shape[0] != anchors.numel():
        raise ValueError(f"sample_negatives: shape {shape} must start with len(anchors)="
                         f"{anchors.numel()}")
    a = anchors.view((-1,) + (1,) * (len(shape) - 1)).expand(shape)
    # Only the anchors' rows are ever queried: their keys cost O(B * degree) per call where the
    # whole table would cost O(E) (140M entries at 4M videos, seconds per step).
    keys = _edge_keys(rowptr.long(), col.long(), rows=torch.unique(anchors))
    n_csr = rowptr.numel() - 1

    def bad(n: Tensor, src: Tensor) -> Tensor:
        return (n == src) | _is_edge(keys, n_csr, src, n)

    invalid = bad(neg, a)
    for _ in range(max_tries):
        k = int(invalid.sum())
        if k == 0:
            break
        neg[invalid] = draw(k)
        invalid = bad(neg, a)  # re-check all: cheap, and keeps the logic obviously right
    return neg, ~invalid
