"""Inductive embedding of unseen videos (paper §3.5): ``vidsage_core.infer`` against a plain peer.

Ours: :class:`vidsage_core.infer.InductiveEmbedder` built once over the training videos (FAISS
index, CSR), then ``embed_one`` per video (batch 1) and ``embed`` for a batch of 4096. Features
are given (no video decoding or object detection: the paper's Table 1 latency includes feature
extraction, which is not what is measured here).

Peer: what a PyG user would write: an exact FAISS ``IndexFlatIP`` lookup of the ``k`` nearest
training videos with the same ``tau`` rule, the new node appended to the training ``edge_index``,
``torch_geometric.utils.k_hop_subgraph`` (2 hops) around the new node(s), and a forward pass of a
``SAGEConv x 2`` model of the same widths on that subgraph.

Both models have untrained (seeded) weights: latency does not depend on the weight values. The
models differ (VidSage layer vs SAGEConv), with similar per-node work at these widths.
Batch-1 latency is measured one video at a time, in alternating blocks of consecutive calls per
side (a service answering a stream of requests: its index and caches stay warm), and once more
alternating ours / peer call by call (each side after the other has evicted the caches; recorded
as ``interleaved_*``). The batch-4096 throughput alternates ours / peer per repetition.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from benchmarks.bench_train import HIDDEN_DIM, OUT_DIM, PygSage2
from benchmarks.report import PeakMemory, Row, device_label, median, percentile, synchronize

LATENCY_TARGET_MS = 5.0  # the brief's CPU target for one video, features given
BLOCK_CALLS = 20  # consecutive single-video calls per side before switching sides


class PeerEmbedder:
    """FAISS flat kNN + append to edge_index + PyG ``k_hop_subgraph`` + ``SAGEConv x 2``.

    Args:
        model: the PyG model (eval mode is set here).
        x_train: float32 ``[N, D]`` L2-normalised training features.
        graph: training ``VideoGraph``.
        k, tau: attachment rule (``1 - ||x_new - x_j|| >= tau`` among the k nearest).
        device: where the model runs.
    """

    def __init__(self, model: torch.nn.Module, x_train: np.ndarray, graph, k: int, tau: float,
                 device: str = "cpu") -> None:
        import faiss

        self.model = model.to(device).eval()
        self.x_train = torch.from_numpy(np.ascontiguousarray(x_train, dtype=np.float32))
        self.index = faiss.IndexFlatIP(x_train.shape[1])
        self.index.add(np.ascontiguousarray(x_train, dtype=np.float32))
        self.edge_index = graph.edge_index
        self.n = int(graph.num_nodes)
        self.k, self.tau, self.device = int(k), float(tau), device

    @torch.no_grad()
    def embed(self, x_new: np.ndarray) -> np.ndarray:
        """float32 ``[M, out_dim]`` embeddings of ``x_new`` ``[M, D]``."""
        from torch_geometric.utils import k_hop_subgraph

        x_new = np.ascontiguousarray(np.atleast_2d(x_new), dtype=np.float32)
        m = x_new.shape[0]
        ip, idx = self.index.search(x_new, self.k)
        dist = np.sqrt(np.maximum(0.0, (x_new * x_new).sum(1, keepdims=True) + 1.0 - 2.0 * ip))
        keep = (idx >= 0) & (1.0 - dist >= self.tau)
        rows = np.repeat(np.arange(m), self.k)[keep.ravel()]
        new_ei = torch.from_numpy(np.stack([idx[keep], rows + self.n])).long()
        edge_index = torch.cat([self.edge_index, new_ei], dim=1)
        targets = torch.arange(self.n, self.n + m)
        subset, sub_ei, mapping, _ = k_hop_subgraph(targets, 2, edge_index, relabel_nodes=True,
                                                    num_nodes=self.n + m)
        x_all = torch.cat([self.x_train, torch.from_numpy(x_new)])
        z = self.model(x_all[subset].to(self.device), sub_ei.to(self.device))[mapping.to(self.device)]
        return z.float().cpu().numpy()


def bench_infer(x_train: np.ndarray, graph, x_new: np.ndarray, size_label: str, queries: int = 200,
                batch: int = 4096, repeats: int = 3, device: str = "auto", seed: int = 0) -> list[Row]:
    """Batch-1 latency (p50/p99) and batch throughput rows.

    Args:
        x_train: float32 ``[N, D]`` training features (graph nodes).
        graph: training ``VideoGraph`` (its ``meta`` gives ``k`` and ``tau``).
        x_new: float32 ``[M, D]`` held-out videos; the batch is ``batch`` rows drawn from them
            (with replacement when ``M < batch``; each video is embedded independently).
        size_label: problem size in words.
        queries: single videos timed (the first ``queries`` held-out rows, cycled).
        batch: batch size of the throughput row (the brief: 4096).
        repeats: timed batch repetitions per side.
        device: "auto", "cpu" or "cuda".
        seed: weight and batch-draw seed.

    Returns:
        [latency row, throughput row].
    """
    from vidsage_core.graph import DEFAULT_K, DEFAULT_TAU
    from vidsage_core.infer import InductiveEmbedder
    from vidsage_core.model import build_model
    from vidsage_core.utils import resolve_device

    device = resolve_device(device)
    k = int(graph.meta.get("k", DEFAULT_K))
    tau = float(graph.meta.get("tau", DEFAULT_TAU))
    d = x_train.shape[1]
    torch.manual_seed(seed)
    ours_model = build_model("vidsage", d, HIDDEN_DIM, OUT_DIM).eval()
    peer_model = PygSage2(d, HIDDEN_DIM, OUT_DIM).eval()

    t0 = time.perf_counter()
    with PeakMemory(device) as mem_ours_build:
        ours = InductiveEmbedder(ours_model, x_train, graph, k=k, tau=tau, mode="exact", device=device,
                                 knn_device="cpu")
    ours_build_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    with PeakMemory(device) as mem_peer_build:
        peer = PeerEmbedder(peer_model, x_train, graph, k, tau, device)
    peer_build_s = time.perf_counter() - t0

    # Batch 1, as a service answers a stream of single-video requests: blocks of BLOCK_CALLS
    # consecutive calls per side, the blocks alternating so that drifts in machine load hit both
    # sides alike. Then once more interleaved call by call, where each side starts with caches
    # the other's work has just evicted (recorded as an extra, not the headline).
    rows_q = np.arange(queries) % len(x_new)
    for i in rows_q[:3]:  # warm-up (first-call allocations, lazy imports)
        ours.embed_one(x_new[i])
        peer.embed(x_new[i:i + 1])
    with PeakMemory(device) as mem1_ours:
        ours.embed_one(x_new[rows_q[0]])
    with PeakMemory(device) as mem1_peer:
        peer.embed(x_new[rows_q[0]:rows_q[0] + 1])

    def timed(call, q) -> float:
        synchronize(device)
        a = time.perf_counter()
        call(q)
        synchronize(device)
        return time.perf_counter() - a

    def ours_call(q):
        return ours.embed_one(q)

    def peer_call(q):
        return peer.embed(q[None, :])

    def knn_call(q):  # the kNN lookup alone: a floor for any attach-then-embed method
        return peer.index.search(q[None, :], k)

    t_ours, t_peer, t_knn = [], [], []
    for s in range(0, len(rows_q), BLOCK_CALLS):
        block = rows_q[s:s + BLOCK_CALLS]
        t_ours += [timed(ours_call, x_new[i]) for i in block]
        t_peer += [timed(peer_call, x_new[i]) for i in block]
        t_knn += [timed(knn_call, x_new[i]) for i in block]
    t_ours_cold, t_peer_cold = [], []
    for i in rows_q:
        t_ours_cold.append(timed(ours_call, x_new[i]))
        t_peer_cold.append(timed(peer_call, x_new[i]))

    # Batch: the same `batch` videos for both sides.
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(x_new), size=batch, replace=len(x_new) < batch)
    xb = np.ascontiguousarray(x_new[pick])
    ours.embed(xb[:8])  # warm-up
    peer.embed(xb[:8])
    with PeakMemory(device) as memb_ours:
        z_ours = ours.embed(xb)
    with PeakMemory(device) as memb_peer:
        z_peer = peer.embed(xb)
    if z_ours.shape != (batch, OUT_DIM) or z_peer.shape != (batch, OUT_DIM):
        raise RuntimeError(f"unexpected embedding shapes {z_ours.shape} / {z_peer.shape}")
    tb_ours, tb_peer = [], []
    for _ in range(repeats):
        synchronize(device)
        a = time.perf_counter()
        ours.embed(xb)
        synchronize(device)
        b = time.perf_counter()
        peer.embed(xb)
        synchronize(device)
        c = time.perf_counter()
        tb_ours.append(b - a)
        tb_peer.append(c - b)

    dev = device_label(device)
    memm = ("torch.cuda.max_memory_allocated increase" if device.startswith("cuda") else
            "peak RSS increase during one call (index building excluded; see notes)")
    p50_ours, p50_peer = 1000 * median(t_ours), 1000 * median(t_peer)
    ours_label = (f"vidsage_core.infer.InductiveEmbedder.embed_one (model=vidsage 1152->256, exact kNN "
                  f"k={k}, tau={tau}, then 2 layers over the training videos' cached messages: exact)")
    peer_label = ("FAISS IndexFlatIP kNN + torch_geometric.utils.k_hop_subgraph(2) + SAGEConv x2 forward "
                  "(same widths)")
    build_note = (f"One-off set-up, not in the latency: ours {ours_build_s:.2f} s / "
                  f"{mem_ours_build.mb or 0:.0f} MiB (FAISS index, CSR), peer {peer_build_s:.2f} s / "
                  f"{mem_peer_build.mb or 0:.0f} MiB (FAISS index).")
    latency = Row(group="infer", name="single unseen video, batch 1 (features given), latency p50",
                  size=size_label, metric="ms (p50)", higher_is_better=False, ours_label=ours_label,
                  peer_label=peer_label, ours=p50_ours, peer=p50_peer, repeats=len(t_ours),
                  ours_mem_mb=mem1_ours.mb, peer_mem_mb=mem1_peer.mb, mem_method=memm,
                  target=f"ours <= {LATENCY_TARGET_MS:g} ms p50 on CPU", device=dev,
                  target_met=(p50_ours <= LATENCY_TARGET_MS) if not device.startswith("cuda") else None,
                  extra={"ours_p99_ms": 1000 * percentile(t_ours, 99), "peer_p99_ms": 1000 * percentile(t_peer, 99),
                         "faiss_flat_knn_alone_p50_ms": 1000 * median(t_knn),
                         "ours_mean_ms": 1000 * float(np.mean(t_ours)), "peer_mean_ms": 1000 * float(np.mean(t_peer)),
                         "interleaved_ours_p50_ms": 1000 * median(t_ours_cold),
                         "interleaved_peer_p50_ms": 1000 * median(t_peer_cold),
                         "interleaved_ours_p99_ms": 1000 * percentile(t_ours_cold, 99)},
                  notes=(f"{len(t_ours)} single-video calls per side after 3 warm-up calls, in alternating blocks of "
                         f"{BLOCK_CALLS} consecutive calls per side (a service answering a stream of requests); "
                         f"interleaved_* repeat the {len(t_ours)} calls alternating ours/peer call by call, so each "
                         f"side starts from caches the other has just evicted. Untrained seeded weights (latency "
                         f"does not depend on them). faiss_flat_knn_alone_p50_ms is the exact FAISS lookup of the k "
                         f"neighbours by itself, timed in the same blocks. " + build_note))
    thr_ours, thr_peer = batch / median(tb_ours), batch / median(tb_peer)
    throughput = Row(group="infer", name=f"unseen videos, batch {batch}, throughput", size=size_label,
                     metric="videos/s", higher_is_better=True,
                     ours_label=f"vidsage_core.infer.InductiveEmbedder.embed (batch {batch})",
                     peer_label=peer_label.replace("forward", "forward (batched)"), ours=thr_ours, peer=thr_peer,
                     repeats=repeats, ours_mem_mb=memb_ours.mb, peer_mem_mb=memb_peer.mb, mem_method=memm,
                     target="ours/peer >= 1.0", target_met=thr_ours / thr_peer >= 1.0, device=dev,
                     extra={"ours_batch_s_median": median(tb_ours), "peer_batch_s_median": median(tb_peer)},
                     notes=(f"median over {repeats} alternating repetitions of the same {batch} held-out videos "
                            f"(drawn {'with' if len(x_new) < batch else 'without'} replacement from "
                            f"{len(x_new):,}; each video is embedded independently of the others)."))
    return [latency, throughput]
