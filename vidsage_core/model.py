"""The VidSage graph encoder (paper §3.3) and the GNN variants it is compared with.

The paper's layer, for every node ``i`` at layer ``t``::

    h_i^t = ReLU(W2 · [h_i^{t-1} ‖ Σ_{j ∈ N(i)} w_ij · ReLU(W1 · h_j^{t-1})])

followed by dropout (p = 0.5 "after each transformation", §3.4) and row-wise L2 normalisation
("we normalize the node embedding at every iteration", §3.3). ``W1`` and ``W2`` are "shared
across nodes and layers", and the model has ``L = 2`` layers.

Shape consequence of sharing across layers: the second application of the layer consumes the
first one's output, so the layer must map ``d -> d``: ``W1 ∈ R^{d×d}`` and ``W2 ∈ R^{d×2d}``
(the paper's "``W2 ∈ R^{d'×d}``" cannot hold with ``d' ≠ d`` and sharing). The encoder therefore
outputs ``d`` dimensions, where ``d`` is the width the shared layer runs at. With
``hidden_dim == in_dim`` (the paper-faithful configuration: ``h^0 = f_v`` goes straight into
the layer, e.g. ``d = 1152`` for rgb+audio, 3·1152² ≈ 4.0 M weights) there is no projection;
with ``hidden_dim < in_dim`` a bias-free linear input projection ``P ∈ R^{hidden×in}`` runs
first (an addition to the paper, for cheaper configurations).

Variants (``MODELS``), all 2 layers with ReLU, dropout after each transformation and L2
normalisation after each layer (the paper's §3.1 template applied uniformly, so that an
ablation changes only the convolution):

- ``vidsage``: :class:`VidSage` (shared :class:`VidSageConv`, weighted sum aggregation).
- ``sage-mean`` / ``sage-max`` / ``sage-sum``: ``torch_geometric.nn.SAGEConv`` with unshared
  weights per layer; the aggregator is the only difference between the three (GraphSAGE's
  max-*pool* aggregator would add a per-neighbour MLP before the max; we do not).
  ``SAGEConv`` has no edge-weight input, so these variants IGNORE edge weights.
- ``gcn``: ``GCNConv`` (symmetric normalisation with self loops) using ``edge_weight``.
- ``gat``: ``GATConv`` with ``heads`` heads of ``hidden_dim // heads`` channels concatenated,
  then a single-head output layer. Edge weights enter the attention logits as a 1-d edge
  feature (``edge_dim=1``) so the GAT sees the same weighted graph as VidSage and GCN.

Biases: :class:`VidSageConv` has NO biases by default, exactly as the paper's formula (pass
``bias=True`` to add them); the PyG variants keep their library defaults (biases on).

Final activation: the paper applies ReLU at every layer including the last, so embeddings are
non-negative and their pairwise dot products lie in [0, 1] (GraphSAGE's reference code leaves
the last layer linear). ``final_activation=False`` reproduces the GraphSAGE choice.

Sampled subgraphs: every ``forward`` also accepts PyG's ``num_sampled_nodes_per_hop`` /
``num_sampled_edges_per_hop``; with them only the rows the seeds depend on are computed and the
seeds' embeddings ``[batch_size, out_dim]`` are returned (:func:`hop_slices`,
:func:`encode_subgraph`), identical to the untrimmed seed rows and about half the work.

Edge convention (PyG): column ``e`` of ``edge_index`` is an edge ``(j, i)`` and messages flow
from ``edge_index[0]`` (source ``j``) to ``edge_index[1]`` (target ``i``).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch_geometric.nn import GATConv, GCNConv, MessagePassing, SAGEConv

MODELS = ("vidsage", "sage-mean", "sage-max", "sage-sum", "gcn", "gat")
AGGREGATIONS = ("sum", "mean")  # VidSageConv neighbour aggregation (paper: sum)


def dropout(x: Tensor, p: float, training: bool) -> Tensor:
    """Inverted dropout, as ``F.dropout``; on CPU the mask comes from ``torch.rand``.

    CPU ``F.dropout`` draws its mask with ``bernoulli_``, about twice as slow as a uniform draw
    and a compare (measured on a [11181, 128] activation, forward + backward, one thread: 24 ms
    vs 12.5 ms; four such masks per whole-graph step were ~15 % of pre-training on the 2-core
    machine). Same distribution and scaling; CUDA keeps PyTorch's fused kernel.
    """
    if not training or p == 0.0 or x.is_cuda:
        return F.dropout(x, p=p, training=training)
    if p >= 1.0:
        return torch.zeros_like(x)
    keep = (torch.rand_like(x) >= p).to(x.dtype).mul_(1.0 / (1.0 - p))
    return x * keep


class VidSageConv(MessagePassing):
    """One VidSage layer: ``ReLU(W2 [h_i ‖ Σ_j w_ij ReLU(W1 h_j)])``, dropout, L2 norm.

    Dropout is applied after each of the two transformations: to the messages
    ``ReLU(W1 h_j)`` (per source node, before they are summed) and to the layer output.

    Args:
        in_channels: input width ``d``.
        out_channels: output width (``d`` when the layer is shared across layers); defaults to
            ``in_channels``.
        dropout: dropout probability after each transformation.
        bias: add biases to ``W1`` and ``W2`` (the paper's formula has none).
        act: apply the output ReLU (the paper does at every layer).
        normalize: L2-normalise the output rows.
        aggr: ``"sum"`` (the paper's ``Σ_j w_ij m_j``) or ``"mean"`` (the weighted mean
            ``Σ_j w_ij m_j / Σ_j w_ij``, GraphSAGE's mean aggregator with edge weights; a node
            without in-edges aggregates 0 either way).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        dropout: float = 0.5,
        bias: bool = False,
        act: bool = True,
        normalize: bool = True,
        aggr: str = "sum",
    ) -> None:
        super().__init__(aggr="add")
        if aggr not in AGGREGATIONS:
            raise ValueError(f"VidSageConv: aggr={aggr!r}; expected one of {AGGREGATIONS}")
        self.aggregation = aggr
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.dropout = dropout
        self.act = act
        self.normalize = normalize
        self.lin1 = nn.Linear(in_channels, in_channels, bias=bias)  # W1 ∈ R^{d×d}
        self.lin2 = nn.Linear(2 * in_channels, out_channels, bias=bias)  # W2 on [h_i ‖ agg_i]

    def reset_parameters(self) -> None:
        super().reset_parameters()
        self.lin1.reset_parameters()
        self.lin2.reset_parameters()

    def forward(self, x: Tensor, edge_index: Tensor, edge_weight: Tensor | None = None,
                act: bool | None = None, num_targets: int | None = None) -> Tensor:
        """Apply the layer.

        Args:
            x: node features, float ``[n, in_channels]``.
            edge_index: long ``[2, E]``, messages flow ``edge_index[0] -> edge_index[1]``; or a
                precomputed :class:`Adjacency` (float32 messages; ``edge_weight`` and
                ``num_targets`` are then ignored).
            edge_weight: float ``[E]`` or None (every weight 1).
            act: override ``self.act`` for this call (a shared layer may skip the last ReLU).
            num_targets: compute outputs only for the first ``num_targets`` nodes (every edge
                target must be below it): sampled-subgraph trimming.

        Returns:
            float ``[n, out_channels]`` (``[num_targets, out_channels]`` when given); unit-norm
            rows when ``normalize`` (rows the ReLU zeroes entirely stay zero).
        """
        if isinstance(edge_index, Adjacency):  # precomputed for repeated whole-graph passes
            return self.combine(x[:edge_index.adj.shape[0]],
                                self._mean(edge_index.adj,
                                           _CachedSpMM.apply(self.messages(x), edge_index.adj,
                                                             edge_index.adj_t)), act)
        n_out = x.shape[0] if num_targets is None else int(num_targets)
        # Σ_j w_ij ReLU(W1 h_j) = (A_w · ReLU(W1 H))_i: transform every node once (not every
        # edge) and aggregate with one sparse-dense matmul, which never materialises the
        # [E, d] per-edge message tensor (measured on CPU, 403k edges x 256: layer fwd+bwd
        # 3.4 s -> 0.67 s vs PyG's gather + scatter-add; outputs equal to 1e-7).
        msg = self.messages(x)
        adj_t = weighted_adjacency(edge_index, edge_weight, num_sources=x.shape[0],
                                   num_targets=n_out)
        agg = self.propagate(adj_t, x=msg)
        return self.combine(x[:n_out], agg, act)

    def messages(self, x: Tensor) -> Tensor:
        """Per-source-node messages ``ReLU(W1 h_j)`` (dropout in training), ``[n, in_channels]``."""
        return dropout(F.relu(self.lin1(x)), self.dropout, self.training)

    def combine(self, x_self: Tensor, agg: Tensor, act: bool | None = None) -> Tensor:
        """The layer output from a node's own input and its aggregated messages.

        Args:
            x_self: the targets' inputs ``h_i``, ``[m, in_channels]``.
            agg: ``Σ_j w_ij ReLU(W1 h_j)`` for the same targets, ``[m, in_channels]``.
            act: override ``self.act`` (see :meth:`forward`).

        Returns:
            ``[m, out_channels]``: ``ReLU(W2 [h_i ‖ agg_i])``, dropout, L2 norm.
        """
        out = self.lin2(torch.cat([x_self, agg], dim=-1))
        if (self.act if act is None else act):
            out = F.relu(out)
        out = dropout(out, self.dropout, self.training)
        if self.normalize:
            out = F.normalize(out, p=2.0, dim=-1)
        return out

    def message(self, x_j: Tensor, edge_weight: Tensor | None = None) -> Tensor:
        # Only reached when propagate() is called with a dense edge_index (forward always
        # passes a sparse adjacency, which goes through message_and_aggregate).
        if edge_weight is None:
            return x_j
        return edge_weight.view(-1, 1).to(x_j.dtype) * x_j

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        """Weighted sum over in-neighbours as one CSR x dense product.

        Args:
            adj_t: ``torch.sparse_csr`` ``[n_targets, n_sources]``, entry ``(i, j)`` = ``w_ij``.
            x: per-node messages ``ReLU(W1 h)``, float ``[n_sources, d]``.

        Returns:
            float ``[n_targets, d]`` in ``x``'s dtype. On CPU each output row is reduced by one
            thread in column order, so the result is deterministic.
        """
        if x.dtype == adj_t.dtype:
            out = torch.sparse.mm(adj_t, x)
        else:
            # Half-precision messages (CUDA autocast): sparse kernels do not cover every
            # low-precision dtype, so multiply in the adjacency's float32 (also a more accurate
            # sum) and cast back.
            with torch.autocast(device_type=x.device.type, enabled=False):
                out = torch.sparse.mm(adj_t, x.to(adj_t.dtype)).to(x.dtype)
        return self._mean(adj_t, out)

    def _mean(self, adj_t: Tensor, out: Tensor) -> Tensor:
        """``out`` divided by each target's weighted in-degree when ``aggr == "mean"``.

        Here, not in forward(), so that every caller of the layer formula (whole graph, sampled
        subgraph, a precomputed :class:`Adjacency`, infer's cached-message path) divides by the
        same weighted degree.
        """
        if self.aggregation != "mean":
            return out
        ones = torch.ones(adj_t.shape[1], 1, dtype=adj_t.dtype, device=adj_t.device)
        deg = torch.sparse.mm(adj_t, ones)
        return out / deg.clamp_min(torch.finfo(adj_t.dtype).tiny).to(out.dtype)

    def __repr__(self) -> str:
        return (f"{self.__class__.__name__}({self.in_channels}, {self.out_channels}, "
                f"dropout={self.dropout}, act={self.act}, normalize={self.normalize}, "
                f"aggr={self.aggregation!r})")


class Adjacency(NamedTuple):
    """A weighted adjacency and its transpose, built once for repeated whole-graph passes.

    Pass it to :class:`VidSage` / :class:`VidSageConv` in place of ``edge_index`` (PyG's
    ``adj_t`` idiom). Building the CSR from an edge list sorts every edge, and the backward of a
    CSR product sorts them again to transpose; on the 8,383-node validation graph (297k edges)
    those sorts were ~70 % of a whole-graph forward + backward (measured with torch.profiler),
    so training loops over a fixed graph build this once (:func:`cached_adjacency`).

    Attributes:
        adj: ``torch.sparse_csr`` ``[n_targets, n_sources]``, ``A[i, j] = w_ij``.
        adj_t: ``torch.sparse_csr`` ``[n_sources, n_targets]``, its transpose (for the backward).
    """

    adj: Tensor
    adj_t: Tensor


def cached_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int) -> Adjacency:
    """:class:`Adjacency` of a graph over ``num_nodes`` nodes (see :func:`weighted_adjacency`)."""
    adj = weighted_adjacency(edge_index, edge_weight, num_nodes, num_nodes)
    adj_t = weighted_adjacency(edge_index.flip(0), edge_weight, num_nodes, num_nodes)
    return Adjacency(adj, adj_t)


def whole_graph_args(model: nn.Module, edge_index: Tensor, edge_weight: Tensor | None,
                     num_nodes: int) -> tuple:
    """The graph arguments of repeated whole-graph passes ``model(x, *args)`` over one graph.

    :class:`VidSage` gets a :class:`Adjacency` built once (each pass would otherwise sort every
    edge twice per layer); the PyG encoders get ``(edge_index, edge_weight)``.
    """
    if isinstance(model, VidSage):
        return (cached_adjacency(edge_index, edge_weight, num_nodes),)
    return (edge_index, edge_weight)


class _CachedSpMM(torch.autograd.Function):
    """``A @ m`` whose backward multiplies by the precomputed ``A^T`` (no per-step transpose)."""

    @staticmethod
    def forward(ctx, m: Tensor, adj: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return torch.sparse.mm(adj, m)

    @staticmethod
    def backward(ctx, grad: Tensor):
        return torch.sparse.mm(ctx.adj_t, grad.contiguous()), None, None


def weighted_adjacency(edge_index: Tensor, edge_weight: Tensor | None, num_sources: int,
                       num_targets: int, dtype: torch.dtype = torch.float32) -> Tensor:
    """The transposed weighted adjacency ``A_w`` that :class:`VidSageConv` multiplies with.

    Args:
        edge_index: long ``[2, E]``, edge ``e`` sends ``edge_index[0, e]`` (source ``j``) to
            ``edge_index[1, e]`` (target ``i``).
        edge_weight: float ``[E]`` or None (every weight 1).
        num_sources: number of source nodes (columns).
        num_targets: number of target nodes (rows); every target index must be below it.
        dtype: value dtype (float32; half-precision messages are multiplied in float32).

    Returns:
        ``torch.sparse_csr`` ``[num_targets, num_sources]`` with ``A[i, j] = w_ij``; duplicate
        edges are summed (as a per-edge scatter-add would sum them).
    """
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index must be [2, E], got shape {tuple(edge_index.shape)}")
    num_edges = edge_index.shape[1]
    if edge_weight is None:
        values = torch.ones(num_edges, dtype=dtype, device=edge_index.device)
    else:
        if edge_weight.shape != (num_edges,):
            raise ValueError(f"edge_weight must be [E] = [{num_edges}], "
                             f"got shape {tuple(edge_weight.shape)}")
        values = edge_weight.to(dtype)
    if num_edges:
        lo, hi = edge_index.min(dim=1).values.tolist(), edge_index.max(dim=1).values.tolist()
        if min(lo) < 0 or hi[0] >= num_sources or hi[1] >= num_targets:
            raise ValueError(f"edge_index out of range: sources in [{lo[0]}, {hi[0]}] with "
                             f"num_sources={num_sources}, targets in [{lo[1]}, {hi[1]}] with "
                             f"num_targets={num_targets}")
    # Indices were range-checked above; skip torch's per-call invariant checks (and its
    # warnings about them and about CSR being "beta").
    coo = torch.sparse_coo_tensor(edge_index.flip(0), values, (num_targets, num_sources),
                                  check_invariants=False)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return coo.coalesce().to_sparse_csr()


class VidSage(nn.Module):
    """The 2-layer VidSage encoder with the paper's layer sharing.

    With ``share_weights=True`` (paper) a single :class:`VidSageConv` of width ``hidden_dim`` is
    applied ``num_layers`` times, so ``out_dim`` must equal ``hidden_dim``; when ``in_dim`` differs
    a bias-free ``Linear(in_dim, hidden_dim)`` input projection runs first (no non-linearity: it
    is a learned change of basis, the layer's own ReLUs follow). Weights: ``3·hidden²``
    (+ ``in·hidden`` for the projection). With ``share_weights=False`` the layers are
    ``in_dim -> hidden_dim -> out_dim`` with separate weights and no projection.

    Args:
        in_dim: input feature width (1152 for rgb+audio).
        hidden_dim: width of the shared layer (paper-faithful: ``in_dim``).
        out_dim: embedding width (must equal ``hidden_dim`` when sharing).
        dropout: dropout after each transformation.
        share_weights: share ``W1``/``W2`` across layers (paper).
        num_layers: number of layers ``L`` (paper: 2).
        bias: biases in the VidSage layers (paper formula: none).
        final_activation: ReLU on the last layer too (paper: yes).
        input_proj: force (True) or forbid (False) the input projection; None = project iff
            sharing and ``hidden_dim != in_dim``.
        aggr: neighbour aggregation of the layers, ``"sum"`` (paper) or ``"mean"``.
    """

    def __init__(
        self,
        in_dim: int,
        hidden_dim: int | None = None,
        out_dim: int | None = None,
        dropout: float = 0.5,
        share_weights: bool = True,
        num_layers: int = 2,
        bias: bool = False,
        final_activation: bool = True,
        input_proj: bool | None = None,
        aggr: str = "sum",
    ) -> None:
        super().__init__()
        hidden_dim = in_dim if hidden_dim is None else hidden_dim
        out_dim = hidden_dim if out_dim is None else out_dim
        if num_layers < 1:
            raise ValueError(f"VidSage: num_layers must be >= 1, got {num_layers}")
        if share_weights and out_dim != hidden_dim:
            raise ValueError(
                f"VidSage: with share_weights=True the shared layer maps hidden_dim -> hidden_dim, "
                f"so out_dim ({out_dim}) must equal hidden_dim ({hidden_dim}); "
                "set them equal or pass share_weights=False")
        self.in_dim, self.hidden_dim, self.out_dim = in_dim, hidden_dim, out_dim
        self.share_weights = share_weights
        self.num_layers = num_layers
        self.final_activation = final_activation
        if input_proj is None:
            input_proj = share_weights and hidden_dim != in_dim
        if share_weights and not input_proj and hidden_dim != in_dim:
            raise ValueError(f"VidSage: input_proj=False needs hidden_dim == in_dim when sharing "
                             f"(got in_dim={in_dim}, hidden_dim={hidden_dim})")
        self.proj = nn.Linear(in_dim, hidden_dim, bias=False) if input_proj else None
        first = hidden_dim if input_proj else in_dim
        if share_weights:
            # One module object, applied num_layers times: W1/W2 shared across layers.
            self.conv = VidSageConv(hidden_dim, hidden_dim, dropout=dropout, bias=bias, aggr=aggr)
            self.convs = None
        else:
            self.conv = None
            dims = [first] + [hidden_dim] * (num_layers - 1) + [out_dim]
            self.convs = nn.ModuleList(
                VidSageConv(dims[t], dims[t + 1], dropout=dropout, bias=bias, aggr=aggr)
                for t in range(num_layers))

    def layers(self) -> list[VidSageConv]:
        """The layer applied at each step (the same object ``num_layers`` times when shared)."""
        if self.conv is not None:
            return [self.conv] * self.num_layers
        return list(self.convs)

    def layer_activation(self, t: int) -> bool:
        """Whether step ``t`` ends with the ReLU (every step but the last unless final_activation)."""
        return self.final_activation or t < self.num_layers - 1

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        """Embed nodes.

        Args:
            x: float ``[n, in_dim]``.
            edge_index: long ``[2, E]`` (source -> target).
            edge_weight: float ``[E]`` or None.
            num_sampled_nodes_per_hop: with ``num_sampled_edges_per_hop``, the hop structure of
                a sampled subgraph (``SampledSubgraph.num_sampled_nodes`` / ``_edges``, PyG's
                names); enables trimming, see :func:`hop_slices`.
            num_sampled_edges_per_hop: see above.

        Returns:
            z: float ``[n, out_dim]`` L2-normalised rows; ``[batch_size, out_dim]`` (the seeds)
            when the hop structure is given.
        """
        h = self.proj(x) if self.proj is not None else x
        layers = self.layers()
        slices = hop_slices(len(layers), num_sampled_nodes_per_hop, num_sampled_edges_per_hop)
        for t, conv in enumerate(layers):
            act = self.layer_activation(t)
            if slices is None:
                h = conv(h, edge_index, edge_weight, act=act)
            else:
                src, tgt, e = slices[t]
                w = None if edge_weight is None else edge_weight[:e]
                h = conv(h[:src], edge_index[:, :e], w, act=act, num_targets=tgt)
        return h

    @torch.no_grad()
    def inference(
        self,
        x,
        ptr: Tensor,
        src: Tensor,
        weight: Tensor | None,
        block: int = 32_768,
        out=None,
        work_dir: str | Path | None = None,
        device: str = "cpu",
        progress: bool = False,
        messages: list | None = None,
    ):
        """Eval-mode embeddings of every node, one layer at a time over all nodes (PyG's
        ``BasicGNN.inference``: "compute representations of nodes layer by layer, using all
        available edges").

        Each layer runs once per node, in blocks of ``block`` rows: the messages ``ReLU(W1 h)``
        of every node, then per block of targets ``combine(h_i, Σ_j w_ij msg_j)`` with the
        targets' rows of the in-edge CSR. Equal to ``self.eval()(x, edge_index, edge_weight)``
        (to float rounding) at ``O(N d^2 + E d)`` per layer; memory is bounded by the block size
        when ``x``, ``out`` and ``work_dir`` are on disk.

        Args:
            x: ``[N, in_dim]`` features: a float16/float32 array or memmap (read in blocks) or
                a tensor.
            ptr, src, weight: in-edge CSR (``vidsage_core.embed.in_csr``, or a symmetric
                graph's ``VideoGraph.csr()``): the sources of target ``i`` are
                ``src[ptr[i]:ptr[i+1]]`` with weights ``weight[...]`` (None: ones).
            block: rows per block.
            out: ``[N, out_dim]`` array (e.g. a float16 memmap) to write the result into; None:
                a new float32 array.
            work_dir: where the intermediate layers and messages live as float32 memmaps (None:
                in RAM).
            device: where the products run.
            progress: tqdm over blocks.
            messages: if a list, each layer's messages ``[N, d]`` (float32 arrays) are appended
                to it (the cache ``infer.InductiveEmbedder`` attaches new videos with).

        Returns:
            ``out`` (or the new float32 array) ``[N, out_dim]``.
        """
        from tqdm.auto import tqdm

        n = int(ptr.numel()) - 1
        if x.shape[0] != n:
            raise ValueError(f"inference: x has {x.shape[0]} rows but the CSR describes {n} nodes")
        ptr, src = ptr.long().cpu(), src.long().cpu()
        weight = torch.ones(src.numel()) if weight is None else weight.float().cpu()
        was_training = self.training
        model_device = next(self.parameters()).device
        self.eval()
        self.to(device)
        tmp: list[Path] = []

        def buffer(name: str, width: int) -> np.ndarray:
            if work_dir is None:
                return np.empty((n, width), np.float32)
            path = Path(work_dir) / f"_inference_{id(self)}_{name}.npy"
            tmp.append(path)
            return np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, width))

        def rows(a, s: int, e: int) -> Tensor:
            if isinstance(a, Tensor):
                return a[s:e].to(device).float()
            return torch.from_numpy(np.ascontiguousarray(a[s:e], dtype=np.float32)).to(device)

        def blocks(desc: str):
            return tqdm(range(0, n, block), desc=desc, unit="block", disable=not progress)

        try:
            h = x
            if self.proj is not None:
                h = buffer("h0", self.proj.out_features)
                for s in blocks("inference: projection"):
                    h[s:s + block] = self.proj(rows(x, s, s + block)).cpu().numpy()
            layers = self.layers()
            for t, conv in enumerate(layers):
                msg = buffer(f"msg{t}", conv.in_channels)
                for s in blocks(f"inference: layer {t + 1} messages"):
                    msg[s:s + block] = conv.messages(rows(h, s, s + block)).cpu().numpy()
                msg_t = torch.from_numpy(np.asarray(msg)).to(device)
                last = t == len(layers) - 1
                if last and out is not None:
                    if tuple(out.shape) != (n, conv.out_channels):
                        raise ValueError(f"inference: out has shape {tuple(out.shape)}, "
                                         f"expected {(n, conv.out_channels)}")
                    nxt = out
                else:
                    nxt = np.empty((n, conv.out_channels), np.float32) if last else \
                        buffer(f"h{t + 1}", conv.out_channels)
                for s in blocks(f"inference: layer {t + 1} aggregate"):
                    e = min(n, s + block)
                    lo, hi = int(ptr[s]), int(ptr[e])
                    with warnings.catch_warnings():
                        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
                        adj = torch.sparse_csr_tensor(ptr[s:e + 1] - lo, src[lo:hi], weight[lo:hi],
                                                      size=(e - s, n), check_invariants=False).to(device)
                    z = conv.combine(rows(h, s, e), conv.message_and_aggregate(adj, msg_t),
                                     act=self.layer_activation(t))
                    nxt[s:e] = z.cpu().numpy().astype(nxt.dtype, copy=False)
                if messages is not None:
                    messages.append(msg)
                del msg_t, msg
                h = nxt
            if isinstance(h, np.memmap):
                h.flush()
            return h
        finally:
            self.to(model_device)
            self.train(was_training)
            for path in tmp:
                path.unlink(missing_ok=True)  # open memmaps stay valid until released (POSIX)


class GNNEncoder(nn.Module):
    """Two PyG convolutions with the same ReLU / dropout / L2 template as :class:`VidSage`.

    Args:
        kind: one of ``sage-mean``, ``sage-max``, ``sage-sum``, ``gcn``, ``gat``.
        in_dim: input width.
        hidden_dim: width after the first layer (for ``gat``: total over heads, divisible by
            ``heads``).
        out_dim: embedding width.
        dropout: dropout after each transformation.
        heads: attention heads of the first GAT layer.
        final_activation: ReLU on the last layer too.
    """

    def __init__(
        self,
        kind: str,
        in_dim: int,
        hidden_dim: int,
        out_dim: int,
        dropout: float = 0.5,
        heads: int = 4,
        final_activation: bool = True,
    ) -> None:
        super().__init__()
        self.kind = kind
        self.num_layers = 2
        self.dropout = dropout
        self.final_activation = final_activation
        if kind.startswith("sage-"):
            aggr = kind.split("-", 1)[1]
            self.convs = nn.ModuleList([SAGEConv(in_dim, hidden_dim, aggr=aggr),
                                        SAGEConv(hidden_dim, out_dim, aggr=aggr)])
        elif kind == "gcn":
            self.convs = nn.ModuleList([GCNConv(in_dim, hidden_dim), GCNConv(hidden_dim, out_dim)])
        elif kind == "gat":
            if heads < 1 or hidden_dim % heads:
                raise ValueError(f"gat: hidden_dim ({hidden_dim}) must be a positive multiple "
                                 f"of heads ({heads})")
            self.convs = nn.ModuleList([
                GATConv(in_dim, hidden_dim // heads, heads=heads, concat=True, edge_dim=1),
                GATConv(hidden_dim, out_dim, heads=1, concat=False, edge_dim=1),
            ])
        else:
            raise ValueError(f"GNNEncoder: unknown kind {kind!r}; expected one of {MODELS[1:]}")

    def _conv(self, conv: nn.Module, h: Tensor, edge_index: Tensor,
              edge_weight: Tensor | None) -> Tensor:
        if self.kind == "gcn":
            return conv(h, edge_index, edge_weight)
        if self.kind == "gat":
            edge_attr = None if edge_weight is None else edge_weight.view(-1, 1).to(h.dtype)
            return conv(h, edge_index, edge_attr=edge_attr)
        return conv(h, edge_index)  # SAGEConv: no edge-weight input

    def forward(
        self,
        x: Tensor,
        edge_index: Tensor,
        edge_weight: Tensor | None = None,
        num_sampled_nodes_per_hop: list[int] | None = None,
        num_sampled_edges_per_hop: list[int] | None = None,
    ) -> Tensor:
        """Embed nodes: ``x [n, in_dim] -> z [n, out_dim]`` with L2-normalised rows.

        With the hop structure of a sampled subgraph (see :meth:`VidSage.forward`) only the
        needed rows are computed and ``[batch_size, out_dim]`` is returned. ``gcn`` is not
        trimmed (its degree normalisation would change) and is sliced at the end instead.
        """
        slices = hop_slices(len(self.convs), num_sampled_nodes_per_hop,
                            num_sampled_edges_per_hop)
        if slices is not None and self.kind == "gcn":
            return self.forward(x, edge_index, edge_weight)[: slices[-1][1]]
        h = x
        for t, conv in enumerate(self.convs):
            if slices is None:
                h = self._conv(conv, h, edge_index, edge_weight)
            else:
                # Sources = nodes up to hop L-t, edges of hops < L-t: every target's in-edges
                # are all present, so its row equals the untrimmed one.
                src, tgt, e = slices[t]
                w = None if edge_weight is None else edge_weight[:e]
                h = self._conv(conv, h[:src], edge_index[:, :e], w)[:tgt]
            if self.final_activation or t < len(self.convs) - 1:
                h = F.relu(h)
            h = dropout(h, self.dropout, self.training)
            h = F.normalize(h, p=2.0, dim=-1)
        return h


def hop_slices(
    num_layers: int,
    num_sampled_nodes_per_hop: list[int] | None,
    num_sampled_edges_per_hop: list[int] | None,
) -> list[tuple[int, int, int]] | None:
    """Per-layer (sources, targets, edges) prefix sizes for a hop-ordered sampled subgraph.

    A NeighborLoader-style subgraph orders nodes by hop (seeds, hop-1, hop-2, ...) and edges by
    hop (edges of hop ``h`` point into hop-``h`` nodes). Layer ``t`` of ``L`` only needs outputs
    for nodes of hops ``< L − t`` (targets), reads nodes of hops ``≤ L − t`` (sources) and edges
    of hops ``< L − t``. For L = 2 this skips W2 on the hop-2 nodes in layer 1 and everything
    but the seeds in layer 2 (about half the work), with identical seed outputs.

    Args:
        num_layers: L.
        num_sampled_nodes_per_hop: ``[n_0 (= batch size), n_1, ..., n_L]`` or None.
        num_sampled_edges_per_hop: ``[e_0, ..., e_{L-1}]`` or None.

    Returns:
        ``[(sources, targets, edges)]`` per layer, or None when no hop structure was given.
    """
    if num_sampled_nodes_per_hop is None and num_sampled_edges_per_hop is None:
        return None
    if num_sampled_nodes_per_hop is None or num_sampled_edges_per_hop is None:
        raise ValueError("pass both num_sampled_nodes_per_hop and num_sampled_edges_per_hop")
    nodes = [int(v) for v in num_sampled_nodes_per_hop]
    edges = [int(v) for v in num_sampled_edges_per_hop]
    if len(nodes) != num_layers + 1 or len(edges) != num_layers:
        raise ValueError(f"trimming a {num_layers}-layer model needs {num_layers} sampled hops; "
                         f"got num_sampled_nodes_per_hop={nodes}, "
                         f"num_sampled_edges_per_hop={edges}")
    cn = [sum(nodes[:k]) for k in range(num_layers + 2)]
    ce = [sum(edges[:k]) for k in range(num_layers + 1)]
    return [(cn[num_layers - t + 1], cn[num_layers - t], ce[num_layers - t])
            for t in range(num_layers)]


def encode_subgraph(model: nn.Module, x: Tensor, subgraph, trim: bool = True) -> Tensor:
    """Embeddings of a sampled subgraph's seed nodes.

    Args:
        model: an encoder from :func:`build_model`.
        x: float ``[N, in_dim]`` features of the WHOLE graph (rows are gathered by ``n_id``),
            on the model's device.
        subgraph: a ``vidsage_core.sampler.SampledSubgraph`` (or PyG batch with ``n_id``,
            ``batch_size``, ``edge_index``, ``edge_weight``) on the same device.
        trim: skip rows the seeds do not depend on when the hop structure is known.

    Returns:
        z: float ``[batch_size, out_dim]``, row ``b`` for node ``subgraph.n_id[b]``.
    """
    x_sub = x[subgraph.n_id]
    nodes = getattr(subgraph, "num_sampled_nodes", None)
    edges = getattr(subgraph, "num_sampled_edges", None)
    layers = getattr(model, "num_layers", None)
    # Trim only when the sampler's hops match the model's layers (else compute all, slice).
    if (trim and nodes is not None and edges is not None and layers is not None
            and len(nodes) == layers + 1 and len(edges) == layers):
        return model(x_sub, subgraph.edge_index, subgraph.edge_weight,
                     num_sampled_nodes_per_hop=nodes, num_sampled_edges_per_hop=edges)
    return model(x_sub, subgraph.edge_index, subgraph.edge_weight)[: subgraph.batch_size]


def build_model(
    name: str,
    in_dim: int,
    hidden_dim: int | None,
    out_dim: int | None,
    dropout: float = 0.5,
    heads: int = 4,
    final_activation: bool = True,
    share_weights: bool = True,
    aggr: str = "sum",
) -> nn.Module:
    """Build an encoder by name.

    Args:
        name: one of :data:`MODELS`.
        in_dim: input feature width.
        hidden_dim: hidden width (``vidsage`` with sharing: the shared layer's width); None =
            ``in_dim`` (the paper-faithful ``vidsage``: no input projection).
        out_dim: embedding width (``vidsage`` with sharing: must equal ``hidden_dim``); None =
            ``hidden_dim``.
        dropout: dropout after each transformation (paper: 0.5).
        heads: attention heads for ``gat``.
        final_activation: ReLU on the last layer (paper: True).
        share_weights: ``vidsage`` only; share the layer across the two layers (paper: True).
        aggr: ``vidsage`` only; ``"sum"`` (paper) or ``"mean"`` neighbour aggregation (the
            ``sage-*`` variants name their aggregator in ``name``).

    Returns:
        A module with ``forward(x [n, in_dim], edge_index [2, E], edge_weight [E] | None)
        -> z [n, out_dim]`` (L2-normalised rows).
    """
    hidden_dim = in_dim if hidden_dim is None else hidden_dim
    out_dim = hidden_dim if out_dim is None else out_dim
    if name == "vidsage":
        return VidSage(in_dim, hidden_dim, out_dim, dropout=dropout, share_weights=share_weights,
                       final_activation=final_activation, aggr=aggr)
    if aggr != "sum":
        raise ValueError(f"build_model: aggr={aggr!r} applies to 'vidsage' only ({name!r} names "
                         "its own aggregation)")
    if name in MODELS:
        return GNNEncoder(name, in_dim, hidden_dim, out_dim, dropout=dropout, heads=heads,
                          final_activation=final_activation)
    raise ValueError(f"build_model: unknown model {name!r}; expected one of {MODELS}")


def count_parameters(model: nn.Module) -> int:
    """Number of distinct trainable scalars (shared tensors counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad)
