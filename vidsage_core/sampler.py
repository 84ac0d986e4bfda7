"""Neighbour sampling for mini-batch training (paper §3.4: fan-outs 25 and 10, batches of 512).

:class:`NeighborSampler` is a small vectorised sampler in plain torch over a CSR adjacency. It
returns the same subgraph contract as PyG's ``NeighborLoader`` (:class:`SampledSubgraph`):
``n_id`` (global ids, seed nodes first, then the nodes first reached at hop 1, then hop 2),
``batch_size`` (number of seeds), ``edge_index`` (local ids, messages flow sampled neighbour ->
node it was sampled for, grouped by target) and ``edge_weight``.

Per hop, every frontier node (the seeds, then the nodes first reached at the previous hop, as
in PyG) gets ``min(fanout, degree)`` neighbours drawn uniformly WITHOUT replacement (or
``fanout`` draws with replacement). A fan-out of ``-1`` keeps every neighbour.

Vectorisation: each frontier node's neighbour slots are laid out with ``repeat_interleave`` over
the CSR ranges, every slot gets an independent uniform key, the slots are sorted by
(segment, key) and the first ``fanout`` of each segment are kept: the prefix of a uniformly
random permutation, i.e. a uniform sample without replacement. No Python loop over nodes.

:func:`make_loader` iterates mini-batches and uses ``torch_geometric.loader.NeighborLoader``
when a PyG sampling backend (``pyg-lib`` or ``torch-sparse``) is importable, else this sampler;
``loader.backend`` records which ("pyg" or "vidsage").

Adjacency convention: the neighbours of ``i`` are ``col[rowptr[i]:rowptr[i+1]]`` and are the
nodes that send messages TO ``i``. ``VideoGraph`` is symmetric, so its ``csr()`` (grouped by
source row) is also its in-neighbour list; for directed graphs build the CSR with
:func:`csr_from_edge_index`, which groups by target.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import Any, Iterator, Sequence

import numpy as np
import torch
from torch import Tensor


@dataclass
class SampledSubgraph:
    """A sampled (or full) computation subgraph, in PyG ``NeighborLoader`` form.

    Attributes:
        n_id: long ``[n]`` global node ids; ``n_id[:batch_size]`` are the seed nodes.
        batch_size: number of seed nodes.
        edge_index: long ``[2, e]`` LOCAL ids (index ``n_id``); messages flow
            ``edge_index[0] -> edge_index[1]``.
        edge_weight: float ``[e]`` the original edge weights.
        e_id: long ``[e]`` positions of the sampled edges in the CSR ``col`` array (for the
            PyG backend: in the ``edge_index`` built from that CSR, same positions), or None.
        num_sampled_nodes: nodes added per hop, ``[batch_size, hop1, hop2, ...]``, or None.
        num_sampled_edges: edges sampled per hop, or None.
    """

    n_id: Tensor
    batch_size: int
    edge_index: Tensor
    edge_weight: Tensor
    e_id: Tensor | None = None
    num_sampled_nodes: list[int] | None = field(default=None)
    num_sampled_edges: list[int] | None = field(default=None)

    @property
    def num_nodes(self) -> int:
        return int(self.n_id.numel())

    @property
    def seed_nodes(self) -> Tensor:
        return self.n_id[: self.batch_size]

    def to(self, device: torch.device | str) -> "SampledSubgraph":
        """Copy of the tensors on ``device``."""
        return SampledSubgraph(
            n_id=self.n_id.to(device),
            batch_size=self.batch_size,
            edge_index=self.edge_index.to(device),
            edge_weight=self.edge_weight.to(device),
            e_id=None if self.e_id is None else self.e_id.to(device),
            num_sampled_nodes=self.num_sampled_nodes,
            num_sampled_edges=self.num_sampled_edges,
        )


def csr_from_edge_index(
    edge_index: Tensor, edge_weight: Tensor | None, num_nodes: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Build the in-neighbour CSR ``(rowptr [N+1], col [E], weight [E])`` of a PyG edge list.

    Row ``i`` lists the sources ``j`` of the edges ``(j -> i)``, sorted by ``j``.

    Args:
        edge_index: long ``[2, E]`` (source, target).
        edge_weight: float ``[E]`` or None (weights 1).
        num_nodes: N.
    """
    src, dst = edge_index[0].long(), edge_index[1].long()
    if edge_weight is None:
        edge_weight = torch.ones(src.numel(), dtype=torch.float32, device=src.device)
    order = torch.argsort(dst * max(num_nodes, 1) + src, stable=True)
    counts = torch.bincount(dst, minlength=num_nodes)
    rowptr = torch.zeros(num_nodes + 1, dtype=torch.long, device=src.device)
    rowptr[1:] = torch.cumsum(counts, 0)
    return rowptr, src[order], edge_weight[order]


def _as_csr(graph: Any) -> tuple[Tensor, Tensor, Tensor]:
    """Accept a ``VideoGraph`` (anything with ``.csr()``) or a ``(rowptr, col[, weight])`` tuple."""
    if hasattr(graph, "csr") and callable(graph.csr):
        rowptr, col, weight = graph.csr()
    elif isinstance(graph, (tuple, list)) and len(graph) in (2, 3):
        rowptr, col = graph[0], graph[1]
        weight = graph[2] if len(graph) == 3 else None
    else:
        raise TypeError(f"expected a VideoGraph (with .csr()) or a (rowptr, col[, weight]) tuple, "
                        f"got {type(graph).__name__}")
    # Sampling is index bookkeeping: it runs on the CPU whatever device the graph lives on.
    rowptr = torch.as_tensor(rowptr).long().cpu()
    col = torch.as_tensor(col).long().cpu()
    if weight is None:
        weight = torch.ones(col.numel(), dtype=torch.float32)
    weight = torch.as_tensor(weight).cpu()
    if rowptr.dim() != 1 or rowptr.numel() < 1 or int(rowptr[-1]) != col.numel():
        raise ValueError(f"invalid CSR: rowptr[-1]={int(rowptr[-1]) if rowptr.numel() else None} "
                         f"but col has {col.numel()} entries")
    if weight.numel() != col.numel():
        raise ValueError(f"invalid CSR: {weight.numel()} weights for {col.numel()} edges")
    return rowptr, col, weight


def _epoch_seed(seed: int, epoch: int, stream: int) -> int:
    """An independent 63-bit seed per (seed, epoch, stream), stable across runs and platforms."""
    state = np.random.SeedSequence([seed, epoch, stream]).generate_state(1, dtype=np.uint64)[0]
    return int(state) & ((1 << 63) - 1)


class NeighborSampler:
    """Uniform multi-hop neighbour sampler over a CSR adjacency (vectorised, plain torch).

    Args:
        graph: a ``VideoGraph`` (uses ``graph.csr()``) or a ``(rowptr, col[, weight])`` tuple.
        fanouts: neighbours per node per hop, first hop first (paper: (25, 10)); -1 = all.
        seed: seed of this sampler's own ``torch.Generator``.
        replace: sample with replacement (``fanout`` draws per node with neighbours).
    """

    backend = "vidsage"  # recorded in run provenance, like SubgraphLoader.backend

    def __init__(
        self,
        graph: Any,
        fanouts: Sequence[int] = (25, 10),
        seed: int = 0,
        replace: bool = False,
    ) -> None:
        self.rowptr, self.col, self.weight = _as_csr(graph)
        self.num_nodes = self.rowptr.numel() - 1
        self.fanouts = tuple(int(f) for f in fanouts)
        if any(f == 0 or f < -1 for f in self.fanouts):
            raise ValueError(f"NeighborSampler: fanouts must be positive or -1, got {fanouts}")
        self.replace = replace
        self.generator = torch.Generator().manual_seed(seed)

    def reseed(self, seed: int) -> None:
        """Restart the sampler's random stream at ``seed``."""
        self.generator.manual_seed(seed)

    def _sample_slots(self, start: Tensor, deg: Tensor, fanout: int) -> tuple[Tensor, Tensor]:
        """Pick CSR positions for each frontier node.

        Args:
            start: long ``[m]`` ``rowptr`` of each frontier node.
            deg: long ``[m]`` degrees.
            fanout: neighbours per node (-1: all).

        Returns:
            (positions into ``col`` long ``[k]``, frontier index of each long ``[k]``), grouped
            by frontier node in frontier order.
        """
        m = start.numel()
        frontier_idx = torch.arange(m)
        if self.replace and fanout > 0:
            k = torch.where(deg > 0, torch.full_like(deg, fanout), torch.zeros_like(deg))
            seg = torch.repeat_interleave(frontier_idx, k)
            r = torch.rand(seg.numel(), generator=self.generator, dtype=torch.float64)
            offset = torch.minimum((r * deg[seg]).long(), deg[seg] - 1)
            return start[seg] + offset, seg
        seg = torch.repeat_interleave(frontier_idx, deg)  # one entry per neighbour slot
        seg_start = torch.cumsum(deg, 0) - deg  # first flat slot of each segment
        local_pos = torch.arange(seg.numel()) - seg_start[seg]  # slot's rank inside its row
        if fanout < 0 or bool((deg <= fanout).all()):
            return start[seg] + local_pos, seg  # every neighbour is taken: no randomness needed
        # One sort by (segment, key): the key is segment + U[0,1) in float64. With m < 2^20
        # frontier nodes that leaves >= 33 bits for U, so ties (which would favour low slots)
        # practically never happen; one float sort is several times cheaper than two stable ones.
        keys = seg.double() + torch.rand(seg.numel(), generator=self.generator,
                                         dtype=torch.float64)
        order = torch.sort(keys).indices
        # seg is sorted, so seg[order] == seg and the rank of order[t] in its segment is
        # t - seg_start[seg[t]] = local_pos[t].
        keep = local_pos < fanout
        chosen = order[keep]
        return start[seg[chosen]] + local_pos[chosen], seg[chosen]

    def sample(self, seed_nodes: Tensor) -> SampledSubgraph:
        """Sample the computation subgraph of ``seed_nodes``.

        Args:
            seed_nodes: long ``[B]`` distinct global node ids.

        Returns:
            :class:`SampledSubgraph` with ``n_id[:B] == seed_nodes``.
        """
        seeds = torch.as_tensor(seed_nodes).long().reshape(-1).cpu()
        if seeds.numel() and (int(seeds.min()) < 0 or int(seeds.max()) >= self.num_nodes):
            raise ValueError(f"NeighborSampler.sample: seed ids must be in [0, {self.num_nodes})")
        if torch.unique(seeds).numel() != seeds.numel():
            raise ValueError("NeighborSampler.sample: seed_nodes contain duplicates")
        # Global -> local id map; O(N) per batch, cheaper than hashing for graphs of this size.
        local = torch.full((self.num_nodes,), -1, dtype=torch.long)
        local[seeds] = torch.arange(seeds.numel())
        nodes = [seeds]
        num_nodes = seeds.numel()
        srcs, dsts, eids = [], [], []
        num_sampled_nodes, num_sampled_edges = [seeds.numel()], []
        frontier = seeds
        for fanout in self.fanouts:
            start = self.rowptr[frontier]
            deg = self.rowptr[frontier + 1] - start
            pos, seg = self._sample_slots(start, deg, fanout)
            nbr = self.col[pos]
            # New nodes get the next local ids in order of first appearance, as in PyG.
            cand = nbr[local[nbr] < 0]
            if cand.numel():
                uniq, inv = torch.unique(cand, return_inverse=True)
                first = torch.full((uniq.numel(),), cand.numel(), dtype=torch.long)
                first.scatter_reduce_(0, inv, torch.arange(cand.numel()), reduce="amin")
                new = uniq[torch.argsort(first)]
                local[new] = torch.arange(num_nodes, num_nodes + new.numel())
                num_nodes += new.numel()
            else:
                new = cand
            srcs.append(local[nbr])
            dsts.append(local[frontier][seg])
            eids.append(pos)
            nodes.append(new)
            num_sampled_nodes.append(new.numel())
            num_sampled_edges.append(pos.numel())
            frontier = new  # PyG expands only the nodes first reached at this hop
        e_id = torch.cat(eids) if eids else torch.empty(0, dtype=torch.long)
        edge_index = (torch.stack([torch.cat(srcs), torch.cat(dsts)]) if srcs
                      else torch.empty(2, 0, dtype=torch.long))
        return SampledSubgraph(
            n_id=torch.cat(nodes),
            batch_size=int(seeds.numel()),
            edge_index=edge_index,
            edge_weight=self.weight[e_id],
            e_id=e_id,
            num_sampled_nodes=num_sampled_nodes,
            num_sampled_edges=num_sampled_edges,
        )


def pyg_backend_available() -> bool:
    """Whether PyG's NeighborLoader can sample here (needs ``pyg-lib`` or ``torch-sparse``)."""
    return any(importlib.util.find_spec(m) is not None for m in ("pyg_lib", "torch_sparse"))


class SubgraphLoader:
    """Mini-batches of seed nodes with their sampled subgraphs.

    Each pass (epoch) reshuffles the seeds and restarts the sampler from seeds derived from
    ``(seed, epoch)``, so a run resumed at epoch ``e`` (:meth:`set_epoch`) sees the same batches
    as an uninterrupted one. With the PyG backend the shuffle uses the same per-epoch generator
    but the neighbour draws come from PyG's sampler, which reads torch's global RNG (seed it
    with ``vidsage_core.utils.seed_everything``).

    Attributes:
        backend: ``"pyg"`` or ``"vidsage"``.
        epoch: the epoch the next ``iter()`` will produce (then incremented).
    """

    def __init__(
        self,
        graph: Any,
        seeds: Tensor | np.ndarray | Sequence[int],
        batch_size: int = 512,
        fanouts: Sequence[int] = (25, 10),
        shuffle: bool = True,
        seed: int = 0,
        backend: str = "auto",
        replace: bool = False,
    ) -> None:
        if backend == "auto":
            backend = "pyg" if pyg_backend_available() else "vidsage"
        if backend not in ("pyg", "vidsage"):
            raise ValueError(f"make_loader: backend must be 'auto', 'pyg' or 'vidsage', "
                             f"got {backend!r}")
        if batch_size < 1:
            raise ValueError(f"make_loader: batch_size must be >= 1, got {batch_size}")
        self.backend = backend
        self.seeds = torch.as_tensor(np.asarray(seeds)).long().reshape(-1)
        self.batch_size = batch_size
        self.fanouts = tuple(fanouts)
        self.shuffle = shuffle
        self.seed = seed
        self.replace = replace
        self.epoch = 0
        self._sampler = NeighborSampler(graph, fanouts=self.fanouts, seed=seed, replace=replace)
        self._pyg_data = None
        if backend == "pyg":
            from torch_geometric.data import Data

            s = self._sampler
            row = torch.repeat_interleave(torch.arange(s.num_nodes), s.rowptr[1:] - s.rowptr[:-1])
            # Edge e = (col[e] -> row[e]): the CSR's positions, so e_id means the same thing
            # under both backends.
            self._pyg_data = Data(edge_index=torch.stack([s.col, row]), edge_weight=s.weight,
                                  num_nodes=s.num_nodes)

    def __len__(self) -> int:
        return (self.seeds.numel() + self.batch_size - 1) // self.batch_size

    def set_epoch(self, epoch: int) -> None:
        """Make the next pass produce epoch ``epoch``'s batches."""
        self.epoch = int(epoch)

    def __iter__(self) -> Iterator[SampledSubgraph]:
        epoch = self.epoch
        self.epoch += 1
        shuffle_gen = torch.Generator().manual_seed(_epoch_seed(self.seed, epoch, 0))
        if self.backend == "pyg":
            yield from self._iter_pyg(shuffle_gen)
            return
        self._sampler.reseed(_epoch_seed(self.seed, epoch, 1))
        order = (self.seeds[torch.randperm(self.seeds.numel(), generator=shuffle_gen)]
                 if self.shuffle else self.seeds)
        for start in range(0, order.numel(), self.batch_size):
            yield self._sampler.sample(order[start:start + self.batch_size])

    def _iter_pyg(self, shuffle_gen: torch.Generator) -> Iterator[SampledSubgraph]:
        from torch_geometric.loader import NeighborLoader

        loader = NeighborLoader(self._pyg_data, num_neighbors=list(self.fanouts),
                                input_nodes=self.seeds, batch_size=self.batch_size,
                                shuffle=self.shuffle, replace=self.replace,
                                generator=shuffle_gen)
        for batch in loader:
            yield SampledSubgraph(
                n_id=batch.n_id, batch_size=int(batch.batch_size), edge_index=batch.edge_index,
                edge_weight=batch.edge_weight, e_id=getattr(batch, "e_id", None),
                num_sampled_nodes=getattr(batch, "num_sampled_nodes", None),
                num_sampled_edges=getattr(batch, "num_sampled_edges", None))


def make_loader(
    graph: Any,
    seeds: Tensor | np.ndarray | Sequence[int],
    batch_size: int = 512,
    fanouts: Sequence[int] = (25, 10),
    shuffle: bool = True,
    seed: int = 0,
    backend: str = "auto",
    replace: bool = False,
) -> SubgraphLoader:
    """Iterate :class:`SampledSubgraph` mini-batches over ``seeds``.

    Args:
        graph: ``VideoGraph`` or ``(rowptr, col[, weight])``.
        seeds: node ids to cover each epoch (e.g. every training node).
        batch_size: seeds per batch (paper: 512).
        fanouts: per-hop fan-outs (paper: (25, 10)).
        shuffle: reshuffle seeds each epoch.
        seed: base seed for shuffling and sampling.
        backend: ``"auto"`` (PyG when ``pyg_backend_available()``), ``"pyg"`` or ``"vidsage"``.
        replace: sample neighbours with replacement.

    Returns:
        A :class:`SubgraphLoader` (``len()`` = batches per epoch, ``.backend`` = what samples).
    """
    return SubgraphLoader(graph, seeds, batch_size=batch_size, fanouts=fanouts, shuffle=shuffle,
                          seed=seed, backend=backend, replace=replace)


def full_graph_batch(graph: Any) -> SampledSubgraph:
    """The whole graph as one batch (every node a seed), for small graphs / full-graph mode.

    Edges are taken from the CSR: edge ``(col[e] -> row[e])`` for CSR position ``e``.

    Args:
        graph: ``VideoGraph`` or ``(rowptr, col[, weight])``.
    """
    rowptr, col, weight = _as_csr(graph)
    n = rowptr.numel() - 1
    row = torch.repeat_interleave(torch.arange(n), rowptr[1:] - rowptr[:-1])
    return SampledSubgraph(n_id=torch.arange(n), batch_size=n,
                           edge_index=torch.stack([col, row]), edge_weight=weight,
                           e_id=torch.arange(col.numel()))  # no hop structure: not trimmable
