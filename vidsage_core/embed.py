"""Embedding nodes with a trained GNN: layer-wise inference over all nodes, exact closures.

:func:`embed` is the one transductive embedder (``vidsage run``, ``vidsage train``, inductive
embedding and the scale benchmark all call it): the VidSage model's layer-wise
:meth:`~vidsage_core.model.VidSage.inference` over a (memory-mapped) feature store, or, for the
PyG variants, whole-graph / exact-closure forward passes (:func:`embed_nodes`). The in-edge CSR
helpers (:func:`in_csr`, :func:`closure_subgraph`) serve the trainer and inductive embedding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from vidsage_core.utils import resolve_device

__all__ = ["as_float_tensor", "closure_subgraph", "embed", "embed_nodes", "graph_in_csr", "in_csr",
           "num_layers", "unwrap"]


def as_float_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """float32 CPU tensor sharing memory with ``x`` when possible (copies read-only memmaps)."""
    if isinstance(x, torch.Tensor):
        return x.float()
    arr = np.asarray(x, dtype=np.float32)
    if not (arr.flags.writeable and arr.flags.c_contiguous):
        arr = np.array(arr, dtype=np.float32, order="C")
    return torch.from_numpy(arr)


def unwrap(model: nn.Module) -> nn.Module:
    """The module inside a DistributedDataParallel (or similar) wrapper; ``model`` itself otherwise."""
    return model.module if hasattr(model, "module") and isinstance(model.module, nn.Module) else model


def num_layers(model: nn.Module) -> int:
    """Message-passing depth of ``model`` (the paper's L = 2 unless the model says otherwise)."""
    model = unwrap(model)
    for name in ("num_layers", "depth"):
        if isinstance(getattr(model, name, None), int):
            return int(getattr(model, name))
    convs = getattr(model, "convs", None)
    if isinstance(convs, nn.ModuleList):
        return len(convs)
    return 2


def graph_in_csr(graph) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """In-edge CSR ``(ptr, src, weight)`` of a graph (a symmetric VideoGraph's own CSR, else :func:`in_csr`)."""
    if hasattr(graph, "csr"):
        rowptr, col, weight = graph.csr()
        return rowptr.long(), col.long(), weight.float()
    return in_csr(graph.edge_index, graph.edge_weight, graph.num_nodes)[:3]


def in_csr(edge_index: torch.Tensor, edge_weight: torch.Tensor | None, num_nodes: int
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Group edges by target: edge (j -> i) is listed under i (PyG: messages flow source->target).

    Args:
        edge_index: long [2, E], (source, target).
        edge_weight: float [E] or None (ones).
        num_nodes: N.

    Returns:
        ptr long [N+1], src long [E] (sources sorted by target, then source), weight float [E],
        order long [E] (position of each listed edge in the input).
    """
    src, dst = edge_index[0].long(), edge_index[1].long()
    if edge_weight is None:
        edge_weight = torch.ones(src.numel())
    order = torch.argsort(dst * max(num_nodes, 1) + src, stable=True)
    counts = torch.bincount(dst, minlength=num_nodes)
    ptr = torch.zeros(num_nodes + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(counts, 0)
    return ptr, src[order], edge_weight.float()[order], order


def _edge_slots(ptr: torch.Tensor, nodes: torch.Tensor) -> torch.Tensor:
    """Positions in the CSR arrays of every in-edge of ``nodes`` (vectorised ``range`` concat)."""
    starts = ptr[nodes]
    counts = ptr[nodes + 1] - starts
    total = int(counts.sum())
    if total == 0:
        return torch.zeros(0, dtype=torch.long)
    offsets = torch.cumsum(counts, 0) - counts
    return torch.repeat_interleave(starts - offsets, counts) + torch.arange(total)


def closure_subgraph(ptr: torch.Tensor, src: torch.Tensor, weight: torch.Tensor, targets: torch.Tensor,
                     num_layers: int, num_nodes: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The smallest subgraph on which an ``num_layers``-layer GNN gives ``targets`` exact outputs.

    Layer ``l`` output at a node needs layer ``l-1`` outputs of all its in-neighbours, so the
    targets need every in-edge of the nodes within ``num_layers - 1`` hops. Degree-normalised
    layers (GCN) also need the in-degree of the message *sources*, i.e. every in-edge of the
    nodes within ``num_layers`` hops; we include those too, which makes the result exact for any
    layer whose message weights depend only on the two endpoints' in-edges (sum/mean/max, GCN,
    GAT), at the price of one extra hop of (unused) source features.

    Args:
        ptr, src, weight: in-edge CSR from :func:`in_csr` (or a symmetric graph's CSR).
        targets: long [T] distinct node ids.
        num_layers: L.
        num_nodes: N.

    Returns:
        n_id long [n] (targets first, in order), edge_index long [2, e] in local ids,
        edge_weight float [e].
    """
    targets = targets.long()
    in_set = torch.zeros(num_nodes, dtype=torch.bool)
    in_set[targets] = True
    order = [targets]
    frontier = targets
    for _ in range(num_layers):  # grow S_0 .. S_L
        nbrs = src[_edge_slots(ptr, frontier)]
        new = torch.unique(nbrs[~in_set[nbrs]])
        in_set[new] = True
        order.append(new)
        frontier = new
    s_l = torch.cat(order)
    slots = _edge_slots(ptr, s_l)  # every in-edge of S_L
    e_dst = torch.repeat_interleave(s_l, ptr[s_l + 1] - ptr[s_l])
    e_src = src[slots]
    outer = torch.unique(e_src[~in_set[e_src]])  # S_{L+1} \ S_L: feature-only sources
    n_id = torch.cat([s_l, outer])
    local = torch.full((num_nodes,), -1, dtype=torch.long)
    local[n_id] = torch.arange(n_id.numel())
    edge_index = torch.stack([local[e_src], local[e_dst]])
    return n_id, edge_index, weight[slots]


@torch.no_grad()
def embed_nodes(model: nn.Module, x: np.ndarray | torch.Tensor, edge_index: torch.Tensor,
                edge_weight: torch.Tensor | None, num_nodes: int, targets: torch.Tensor | None = None,
                device: str = "auto", batch_size: int = 4096, max_full_nodes: int = 200_000,
                progress: bool = False) -> np.ndarray:
    """Eval-mode GNN outputs for ``targets`` on an arbitrary (possibly directed) graph.

    Graphs with at most ``max_full_nodes`` nodes run in one whole-graph forward pass. Larger
    graphs run in batches of ``batch_size`` targets, each on its exact
    :func:`closure_subgraph` (every neighbour, no sampling), so both paths give the same numbers
    up to float summation order.

    Args:
        model: GNN with ``forward(x, edge_index, edge_weight)``.
        x: float [N, D] node features.
        edge_index: long [2, E]; edge_weight: float [E] or None.
        num_nodes: N.
        targets: long [T] nodes to return (default all).
        device: "auto", "cpu", "cuda", ...
        batch_size: targets per batch on the large-graph path.
        max_full_nodes: largest graph run in a single pass.
        progress: tqdm over batches.

    Returns:
        float32 [T, out_dim].
    """
    from tqdm.auto import tqdm

    device = resolve_device(device)
    model = unwrap(model)
    was_training = model.training
    model.eval()
    try:
        x_t = as_float_tensor(x)
        if x_t.shape[0] != num_nodes:
            raise ValueError(f"x has {x_t.shape[0]} rows but the graph has {num_nodes} nodes")
        model_device = next(model.parameters()).device
        model.to(device)
        all_targets = torch.arange(num_nodes) if targets is None else torch.as_tensor(targets).long()
        if num_nodes <= max_full_nodes:
            z = model(x_t.to(device), edge_index.to(device),
                      None if edge_weight is None else edge_weight.float().to(device))
            out = z[all_targets.to(device)].float().cpu().numpy()
        else:
            ptr, src, w, _ = in_csr(edge_index, edge_weight, num_nodes)
            layers = num_layers(model)
            chunks = []
            for start in tqdm(range(0, all_targets.numel(), batch_size), desc="embed", disable=not progress):
                t = all_targets[start:start + batch_size]
                n_id, sub_ei, sub_w = closure_subgraph(ptr, src, w, t, layers, num_nodes)
                z = model(x_t[n_id].to(device), sub_ei.to(device), sub_w.to(device))
                chunks.append(z[: t.numel()].float().cpu())
            out = torch.cat(chunks).numpy() if chunks else np.zeros((0, 0), np.float32)
        model.to(model_device)
        return np.ascontiguousarray(out, dtype=np.float32)
    finally:
        model.train(was_training)



def embed(model: nn.Module, x: np.ndarray, graph, device: str = "auto", batch_size: int = 4096,
          max_full_nodes: int = 200_000, progress: bool = False, out: np.ndarray | None = None,
          work_dir: str | Path | None = None, block: int = 32_768) -> np.ndarray:
    """Transductive embeddings of every node of ``graph`` (eval mode: no dropout, no sampling).

    Models with a layer-wise ``inference`` (:class:`~vidsage_core.model.VidSage`) run it: each
    layer once over all nodes in blocks of ``block`` rows, reading ``x`` (a memmap is fine) and
    writing ``out``, with intermediate layers in ``work_dir`` (the one embedder from 14k to
    millions of videos). Other models run :func:`embed_nodes`: one whole-graph forward pass when
    ``graph.num_nodes <= max_full_nodes``, else batches of ``batch_size`` nodes, each on the exact
    full-neighbourhood subgraph it depends on (:func:`closure_subgraph`). All paths give the same
    embeddings (to float rounding).

    Args:
        model: trained GNN (DDP wrapper allowed).
        x: ``[N, D]`` node features (the ones trained on): float16/float32 array or memmap.
        graph: VideoGraph with N nodes.
        device: "auto", "cpu" or "cuda[:i]".
        batch_size: nodes per batch on the closure path.
        max_full_nodes: largest graph embedded in one pass on the closure path.
        progress: tqdm over blocks / batches.
        out: ``[N, out_dim]`` array (e.g. a float16 memmap) to write into (layer-wise path).
        work_dir: where intermediate layers are memory-mapped (layer-wise path; None: RAM).
        block: rows per block (layer-wise path).

    Returns:
        ``[N, out_dim]`` (``out`` when given, else float32), rows L2-normalised by the model.
    """
    module = unwrap(model)
    device = resolve_device(device)
    if x.shape[0] != graph.num_nodes:
        raise ValueError(f"x has {x.shape[0]} rows but the graph has {graph.num_nodes} nodes")
    if hasattr(module, "inference"):
        ptr, src, weight = graph_in_csr(graph)
        z = module.inference(x, ptr, src, weight, block=block, out=out, work_dir=work_dir, device=device,
                             progress=progress)
        return z if out is not None else np.ascontiguousarray(z, dtype=np.float32)
    z = embed_nodes(module, x, graph.edge_index, graph.edge_weight, graph.num_nodes, None, device,
                    batch_size, max_full_nodes, progress)
    if out is not None:
        out[:] = z
        return out
    return z
