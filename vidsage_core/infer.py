"""Inductive embedding of unseen videos (paper §3.5).

A new video is attached to the trained graph the way the training graph was built:

* visual edges to its ``k`` nearest training videos that pass the τ rule
  ``g = 1 - ||x_new - x_j|| >= tau`` (weight ``w2 = 1``), and, for VidSage,
* object edges to the training videos whose object sets it shares, found through an inverted
  index over the training objects, weighted by the Jaccard index ``w1`` (the same
  ``min_jaccard`` / top-``max_per_node`` / stop-object rules as ``jaccard.jaccard_edges``),

combined as ``w = alpha * w1 + beta * w2`` (LiteVidSage graphs: ``w = w2 = 1``). Parameters left
as ``None`` are read from ``graph.meta``, i.e. from how the training graph was built.

New nodes are appended after the ``N`` training nodes and receive edges only *from* training
nodes (``training j -> new i``): they never send messages, so training nodes keep their
transductive embeddings and a new video's embedding does not depend on which other new videos
are embedded with it.

For the VidSage model this makes inference cheap: the messages ``ReLU(W1 h_j^t)`` every training
node sends at each layer ``t`` never change, so they are computed once over the training graph
and cached; a new video then costs one neighbour search plus, per layer, a weighted sum of its
neighbours' cached messages and one ``W2`` product (exact: the same numbers as running the
model on the whole graph). Other models (SAGEConv, GCN, GAT) run on the exact computation
subgraph of the new nodes instead (their training neighbours keep all of their training edges,
which the 2-layer model needs: the first layer of a neighbour aggregates the neighbour's own
neighbourhood).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from vidsage_core.embed import closure_subgraph, graph_in_csr, num_layers, unwrap
from vidsage_core.graph import DEFAULT_K, DEFAULT_TAU
from vidsage_core.jaccard import (DEFAULT_MAX_OBJECT_FREQUENCY, DEFAULT_MAX_PER_NODE, DEFAULT_MIN_JACCARD,
                                  ObjectIndex, ObjectSets)
from vidsage_core.knn import build_index
from vidsage_core.model import VidSage, weighted_adjacency
from vidsage_core.store import gather_rows
from vidsage_core.utils import resolve_device


class _FromGraph:
    """Sentinel default: take the value from ``graph.meta`` (None may mean "no cap" there)."""

    def __repr__(self) -> str:
        return "FROM_GRAPH"


FROM_GRAPH: Any = _FromGraph()


def _graph_param(graph, name: str, value, default):
    """``value`` unless it is None / FROM_GRAPH, then ``graph.meta[name]``, then ``default``."""
    if value is not None and value is not FROM_GRAPH:
        return value
    meta = getattr(graph, "meta", None) or {}
    return meta.get(name, default)


def _defaults():
    return dict(k=DEFAULT_K, tau=DEFAULT_TAU, min_jaccard=DEFAULT_MIN_JACCARD,
                max_per_node=DEFAULT_MAX_PER_NODE, max_object_frequency=DEFAULT_MAX_OBJECT_FREQUENCY)


class InductiveEmbedder:
    """Embeds unseen videos with a trained model; builds the neighbour and object indexes once.

    Args:
        model: trained GNN.
        x_train: [N, D] training features (L2-normalised), rows = graph nodes: float32, or a
            float16/float32 memmap store (read in place).
        graph: the training VideoGraph.
        objects_train: [N] object sets (VidSage graphs); None for LiteVidSage.
        k, tau: visual neighbours and threshold (None: ``graph.meta``, else graph defaults).
        alpha, beta: weights of the object and visual terms (None: ``graph.meta``, else 0.7 /
            0.3). Ignored without objects: visual edges then weigh 1 as in LiteVidSage.
        min_jaccard, max_per_node, max_object_frequency: object-edge rules as in
            ``jaccard.jaccard_edges`` (None for the last two means no cap); left out: as recorded in
            ``graph.meta``, else the graph module's defaults.
        mode: neighbour search, "exact", "ivf", "hnsw" or "ivf-gemm".
        device: where the GNN runs.
        knn_device: where the neighbour search runs.
    """

    def __init__(self, model: nn.Module, x_train: np.ndarray, graph, objects_train: ObjectSets | None = None,
                 k: int | None = None, tau: float | None = None, alpha: float | None = None,
                 beta: float | None = None, min_jaccard: float | None = None, max_per_node: int | None = FROM_GRAPH,
                 max_object_frequency: float | None = FROM_GRAPH, mode: str | None = None, device: str = "auto",
                 knn_device: str = "cpu") -> None:
        d = _defaults()
        self.model = unwrap(model)
        # A float16/float32 array or memmap store is used in place (rows are read as needed).
        self.x_train = (x_train if isinstance(x_train, np.ndarray) and x_train.ndim == 2
                        and x_train.dtype in (np.float16, np.float32) else np.ascontiguousarray(x_train, np.float32))
        self.graph = graph
        self.n = int(graph.num_nodes)
        if self.x_train.shape[0] != self.n:
            raise ValueError(f"x_train has {self.x_train.shape[0]} rows but the graph has {self.n} nodes")
        kind = (getattr(graph, "meta", None) or {}).get("kind")
        self.use_objects = objects_train is not None
        if kind == "vidsage" and not self.use_objects:
            raise ValueError("the training graph is a VidSage graph (object edges); pass objects_train "
                             "(and objects_new) to attach new videos the same way")
        if self.use_objects and len(objects_train) != self.n:
            raise ValueError(f"objects_train has {len(objects_train)} sets for {self.n} training videos")
        self.k = int(_graph_param(graph, "k", k, d["k"]))
        self.tau = float(_graph_param(graph, "tau", tau, d["tau"]))
        self.alpha = float(_graph_param(graph, "alpha", alpha, 0.7))
        self.beta = float(_graph_param(graph, "beta", beta, 0.3))
        self.min_jaccard = float(_graph_param(graph, "min_jaccard", min_jaccard, d["min_jaccard"]))
        # None is a real value here ("no cap"), so only FROM_GRAPH defers to the graph.
        self.max_per_node = (max_per_node if max_per_node is not FROM_GRAPH
                             else _graph_param(graph, "max_per_node", None, d["max_per_node"]))
        self.max_object_frequency = (max_object_frequency if max_object_frequency is not FROM_GRAPH else
                                     _graph_param(graph, "max_object_frequency", None, d["max_object_frequency"]))
        self.mode = str(_graph_param(graph, "mode", mode, "exact"))
        self.device = resolve_device(device)
        self.index = build_index(self.x_train, mode=self.mode, device=knn_device)
        self.objects = ObjectIndex(objects_train, self.max_object_frequency) if self.use_objects else None
        # A VideoGraph's own CSR (symmetric: rows are in-neighbours) needs no O(E log E) sort.
        self.ptr, self.src, self.w = graph_in_csr(graph)
        self.num_layers = num_layers(self.model)
        self._messages: list[np.ndarray] | None = None  # see _training_messages
        self._messages_key: tuple | None = None

    def params(self) -> dict[str, Any]:
        """The attachment rule actually used (for provenance)."""
        return dict(k=self.k, tau=self.tau, alpha=self.alpha if self.use_objects else None,
                    beta=self.beta if self.use_objects else None, objects=self.use_objects,
                    min_jaccard=self.min_jaccard if self.use_objects else None,
                    max_per_node=self.max_per_node if self.use_objects else None,
                    max_object_frequency=self.max_object_frequency if self.use_objects else None,
                    mode=self.mode)

    def attachment_edges(self, x_new: np.ndarray, objects_new: ObjectSets | None = None
                         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edges from training videos to each new video.

        Args:
            x_new: float32 [M, D] L2-normalised features.
            objects_new: [M] object sets (required when the embedder uses objects).

        Returns:
            train_idx int64 [P], new_idx int64 [P] (0..M-1), weight float32 [P]; sorted by
            (new_idx, train_idx), one entry per pair.
        """
        x_new = np.ascontiguousarray(np.atleast_2d(x_new), dtype=np.float32)
        m = x_new.shape[0]
        if x_new.shape[1] != self.x_train.shape[1]:
            raise ValueError(f"x_new has {x_new.shape[1]} features, training videos {self.x_train.shape[1]}")
        rows, cols, weights = [], [], []
        k = min(self.k, self.n)
        if m and k > 0:
            dist, idx = self.index.search(x_new, k)
            keep = (idx >= 0) & (1.0 - dist >= self.tau)
            rows.append(np.repeat(np.arange(m, dtype=np.int64), k)[keep.ravel()])
            cols.append(idx[keep].astype(np.int64))
            weights.append(np.full(int(keep.sum()), self.beta if self.use_objects else 1.0, np.float64))
        if self.use_objects:
            if objects_new is None or len(objects_new) != m:
                raise ValueError(f"objects_new must hold {m} object sets (the training graph uses objects)")
            r, c, jac = self.objects.edges(objects_new, self.min_jaccard, self.max_per_node)
            rows.append(r)
            cols.append(c)
            weights.append(self.alpha * jac.astype(np.float64))
        if not rows:
            return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.float32)
        r, c, w = np.concatenate(rows), np.concatenate(cols), np.concatenate(weights)
        # A pair found by both rules gets alpha*w1 + beta*w2, as in graph.vidsage_graph.
        key = r * np.int64(self.n) + c
        ukey, inv = np.unique(key, return_inverse=True)
        uw = np.bincount(inv, weights=w, minlength=ukey.size).astype(np.float32)
        return (ukey % self.n).astype(np.int64), (ukey // self.n).astype(np.int64), uw

    def attach(self, x_new: np.ndarray, objects_new: ObjectSets | None = None
               ) -> tuple[torch.Tensor, torch.Tensor, int]:
        """The training graph plus the new videos (see :func:`attach`)."""
        t, nw, w = self.attachment_edges(x_new, objects_new)
        m = np.atleast_2d(x_new).shape[0]
        new_ei = torch.from_numpy(np.stack([t, nw + self.n])).long()
        edge_index = torch.cat([self.graph.edge_index.long(), new_ei], dim=1)
        edge_weight = torch.cat([self.graph.edge_weight.float(), torch.from_numpy(w).float()])
        return edge_index, edge_weight, self.n + m

    @torch.no_grad()
    def embed_attached(self, x_new: np.ndarray, train_idx: np.ndarray, new_idx: np.ndarray, weight: np.ndarray,
                       batch_size: int = 4096) -> np.ndarray:
        """Embed new videos given their in-edges from training videos.

        VidSage models combine each new node's input with its neighbours' cached messages (see
        the module docstring). Other models run, per batch of new nodes, on the computation
        subgraph: the new nodes, their training neighbours S1 and the exact closure of S1 in the
        training graph for the remaining ``L - 1`` layers
        (:func:`~vidsage_core.embed.closure_subgraph`), plus the attachment edges. Either way
        exact for the L-layer model and independent of the other new videos.

        Args:
            x_new: float32 [M, D].
            train_idx, new_idx, weight: [P] attachment edges (train_idx -> new_idx).
            batch_size: new videos per subgraph forward pass (models other than VidSage).

        Returns:
            float32 [M, out_dim].
        """
        x_new = np.ascontiguousarray(np.atleast_2d(x_new), dtype=np.float32)
        m = x_new.shape[0]
        train_idx = torch.as_tensor(np.asarray(train_idx, np.int64))
        new_idx = torch.as_tensor(np.asarray(new_idx, np.int64))
        weight = torch.as_tensor(np.asarray(weight, np.float32))
        if train_idx.numel() and (int(train_idx.min()) < 0 or int(train_idx.max()) >= self.n):
            raise ValueError(f"train_idx outside [0, {self.n})")
        if new_idx.numel() and (int(new_idx.min()) < 0 or int(new_idx.max()) >= m):
            raise ValueError(f"new_idx outside [0, {m})")
        model = self.model
        was_training = model.training
        model.eval()
        model_device = next(model.parameters()).device
        model.to(self.device)
        try:
            if isinstance(model, VidSage):
                return self._embed_from_cached_messages(x_new, train_idx, new_idx, weight)
            out = []
            for start in range(0, m, batch_size):
                stop = min(m, start + batch_size)
                sel = (new_idx >= start) & (new_idx < stop)
                t, nw, w = train_idx[sel], new_idx[sel] - start, weight[sel]
                b = stop - start
                s1 = torch.unique(t)
                # Layers 1..L-1 at S1 need S1's (L-1)-layer closure in the training graph.
                n_id, sub_ei, sub_w = closure_subgraph(self.ptr, self.src, self.w, s1, self.num_layers - 1, self.n)
                local = torch.full((self.n,), -1, dtype=torch.long)
                local[n_id] = torch.arange(n_id.numel()) + b  # training nodes after the b new ones
                ei = torch.cat([sub_ei + b, torch.stack([local[t], nw])], dim=1)
                ew = torch.cat([sub_w.float(), w])
                xs = torch.cat([torch.from_numpy(x_new[start:stop]), gather_rows(self.x_train, n_id)])
                z = model(xs.to(self.device), ei.to(self.device), ew.to(self.device))
                out.append(z[:b].float().cpu())
            res = torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)
            return np.ascontiguousarray(res, dtype=np.float32)
        finally:
            model.to(model_device)
            model.train(was_training)

    def _training_messages(self) -> list[np.ndarray]:
        """Per layer ``t``, the messages ``ReLU(W1 h_j^t)`` of every training node, ``[N, d]``.

        One layer-wise eval pass over the training graph (:meth:`VidSage.inference`, the same
        pass that embeds the graph). Valid while the weights are unchanged: the key is the
        parameters' in-place version counters (an optimiser step bumps them), so training the
        model further recomputes the cache on the next call.
        """
        model = self.model
        key = (self.device, tuple(p._version for p in model.parameters()))
        if self._messages is not None and self._messages_key == key:
            return self._messages
        messages: list[np.ndarray] = []
        model.inference(self.x_train, self.ptr, self.src, self.w, device=self.device, messages=messages)
        self._messages, self._messages_key = messages, key
        return messages

    def _embed_from_cached_messages(self, x_new: np.ndarray, train_idx: torch.Tensor,
                                    new_idx: torch.Tensor, weight: torch.Tensor) -> np.ndarray:
        """VidSage embeddings of new nodes from the cached training messages (eval mode)."""
        model = self.model
        messages = self._training_messages()
        m = x_new.shape[0]
        adj_t = weighted_adjacency(torch.stack([train_idx, new_idx]).to(self.device),
                                   weight.to(self.device), num_sources=self.n, num_targets=m)
        x = torch.from_numpy(x_new).to(self.device)
        h = model.proj(x) if model.proj is not None else x
        for t, conv in enumerate(model.layers()):
            msg = torch.from_numpy(messages[t]).to(self.device)
            h = conv.combine(h, conv.message_and_aggregate(adj_t, msg),
                             act=model.layer_activation(t))
        return np.ascontiguousarray(h.float().cpu().numpy(), dtype=np.float32)

    def embed(self, x_new: np.ndarray, objects_new: ObjectSets | None = None, batch_size: int = 4096) -> np.ndarray:
        """Embeddings of unseen videos, float32 [M, out_dim]."""
        t, nw, w = self.attachment_edges(x_new, objects_new)
        return self.embed_attached(x_new, t, nw, w, batch_size)

    def embed_one(self, x: np.ndarray, objects: frozenset[str] | set[str] | None = None) -> np.ndarray:
        """Embedding of one unseen video, float32 [out_dim] (same as its row of :meth:`embed`)."""
        x = np.asarray(x, np.float32).reshape(1, -1)
        return self.embed(x, None if objects is None else [objects])[0]


def attach(x_new: np.ndarray, x_train: np.ndarray, graph, k: int | None = None, tau: float | None = None,
           objects_new: ObjectSets | None = None, objects_train: ObjectSets | None = None,
           alpha: float | None = None, beta: float | None = None, **kwargs: Any
           ) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Append unseen videos to the training graph (paper §3.5).

    Each new video ``N + i`` receives edges from its ``k`` nearest training videos with
    ``1 - ||x_new - x_j|| >= tau`` and, when object sets are given, from the training videos
    sharing objects with it (Jaccard ``w1``); weights ``alpha * w1 + beta * w2`` (``1`` for
    LiteVidSage). Edges run training -> new only. ``None`` parameters come from ``graph.meta``.

    Args:
        x_new: float32 [M, D] L2-normalised features of the new videos.
        x_train: float32 [N, D] training features (graph nodes).
        graph: training VideoGraph.
        k, tau: visual rule.
        objects_new, objects_train: object sets ([M], [N]) for VidSage graphs.
        alpha, beta: object / visual weights.
        **kwargs: min_jaccard, max_per_node, max_object_frequency, mode (see InductiveEmbedder).

    Returns:
        edge_index long [2, E + P] (training edges, then the P attachment edges), edge_weight
        float32 [E + P], num_nodes N + M.
    """
    emb = InductiveEmbedder(_NoModel(), x_train, graph, objects_train, k=k, tau=tau, alpha=alpha, beta=beta,
                            **kwargs)
    return emb.attach(x_new, objects_new)


class _NoModel(nn.Module):
    """Placeholder so attach() can reuse InductiveEmbedder's graph logic without a model."""

    def __init__(self) -> None:
        super().__init__()
        self.dummy = nn.Parameter(torch.zeros(1), requires_grad=False)


def embed_unseen(model: nn.Module, x_train: np.ndarray, graph, x_new: np.ndarray, k: int | None = None,
                 tau: float | None = None, objects_train: ObjectSets | None = None,
                 objects_new: ObjectSets | None = None, alpha: float | None = None, beta: float | None = None,
                 batch_size: int = 4096, device: str = "auto", **kwargs: Any) -> np.ndarray:
    """Inductive embeddings of unseen videos (see :func:`attach` for how they are connected).

    Args:
        model: trained GNN.
        x_train: float32 [N, D]; graph: training VideoGraph.
        x_new: float32 [M, D].
        k, tau, objects_train, objects_new, alpha, beta, **kwargs: attachment rule.
        batch_size: new videos per forward pass (results do not depend on it).
        device: where the GNN runs.

    Returns:
        float32 [M, out_dim].
    """
    emb = InductiveEmbedder(model, x_train, graph, objects_train, k=k, tau=tau, alpha=alpha, beta=beta,
                            device=device, **kwargs)
    return emb.embed(x_new, objects_new, batch_size)


def embed_one(model: nn.Module, x_train: np.ndarray, graph, x: np.ndarray, k: int | None = None,
              tau: float | None = None, objects_train: ObjectSets | None = None,
              objects: frozenset[str] | set[str] | None = None, alpha: float | None = None,
              beta: float | None = None, device: str = "auto", **kwargs: Any) -> np.ndarray:
    """Embedding of a single unseen video, float32 [out_dim].

    For many single queries build an :class:`InductiveEmbedder` once and call ``embed_one``.
    """
    emb = InductiveEmbedder(model, x_train, graph, objects_train, k=k, tau=tau, alpha=alpha, beta=beta,
                            device=device, **kwargs)
    return emb.embed_one(x, objects)
