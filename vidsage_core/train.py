"""Unsupervised training of the video GNN (paper §3.3–3.4), single process or under ``torchrun``.

One training step:

1. take the next ``batch_size`` seed (anchor) nodes of this epoch's permutation (under
   DistributedDataParallel each rank owns a disjoint shard of that permutation);
2. draw one positive per anchor (the end of a short random walk, ``walk_length=1`` being a direct
   neighbour) and ``num_negatives`` negatives (random non-neighbours), as in GraphSAGE's
   unsupervised objective that the paper follows;
3. embed anchors, positives and negatives through the GNN, either on a neighbour-sampled
   subgraph (fan-outs 25/10, seeds = the union of those nodes) or, for small graphs, on the
   whole graph (the batch is still ``batch_size`` anchors; only the message passing sees every
   edge instead of a sample);
4. compute the loss (negative sampling, triplet or contrastive), AdamW step, scheduler step
   (linear warm-up then cosine decay to 0).

Features come from ``x``, an in-memory array or a memory-mapped float16/float32 store
(:func:`vidsage_core.store.open_store`): a sampled step reads only its subgraph's rows
(:func:`vidsage_core.store.gather_rows`, as nanoGPT's ``get_batch`` reads ``train.bin``), so the
same function trains 14k videos in RAM, millions from disk, and every DDP rank maps one file.

Every random draw of a step (permutation, positives, negatives, neighbour sample) comes from a
``torch.Generator`` seeded by ``(seed, rank, epoch, step-in-epoch)``, so a batch is a pure
function of its position: it is the same with or without data-loader workers and after a
resume. The only running RNG is torch's global one (dropout), which is checkpointed together
with NumPy's and Python's. A run killed and resumed therefore ends, on CPU, with bit-identical
weights to an uninterrupted run (``tests/test_train.py`` checks this).

Command line (also ``vidsage train``; works under ``torchrun`` for DDP)::

    python -m vidsage_core.train --features X.npy --graph G.pt --out results/runs/demo
    torchrun --nproc_per_node 2 -m vidsage_core.train --features X.npy --graph G.pt --out DIR
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import math
import os
import random
import signal
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from vidsage_core.embed import as_float_tensor, embed, graph_in_csr, num_layers, unwrap
from vidsage_core.losses import (contrastive_loss, negative_sampling_loss, sample_negatives, sample_positives,
                                 triplet_loss)
from vidsage_core.model import build_model, whole_graph_args
from vidsage_core.store import gather_rows, open_store
from vidsage_core.utils import resolve_device, save_json, seed_everything

LOSSES = ("negative_sampling", "triplet", "contrastive")
CHECKPOINT = "checkpoint.pt"
MODEL = "model.pt"
# Fields that do not change the arithmetic of a run: they may differ between a run and its resume.
_RESUME_FREE_FIELDS = ("checkpoint_every", "num_workers", "device", "max_steps")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of one training run; saved (resolved) as ``config.json``.

    lr, epochs, temperature, hidden width and final activation were chosen by measurement on
    the real YouTube-8M sample's train+val videos (the test bucket never used; raw numbers in
    ``_DEFAULTS_MEASUREMENT``). Where a default differs from the paper, the reason lives in one
    place, ``vidsage_core.deviations.DEVIATIONS``, which notebook 03 renders beside the run's
    saved values.
    """

    model: str = "vidsage"  # one of model.MODELS; the paper's layer (sum aggregation, shared W1/W2)
    loss: str = "negative_sampling"  # "negative_sampling" (paper eq. J_G), "triplet", "contrastive"
    # Width of the (shared) layer. Paper: d = the input width (1152 for rgb+audio); with sharing
    # the VidSage layer maps d -> d, so out_dim must equal hidden_dim for model="vidsage".
    hidden_dim: int = 128  # 256: +0.007 probe GAP for 2.3x the step time (measured)
    out_dim: int = 128  # embedding width d'
    heads: int = 4  # attention heads, model="gat" only
    share_weights: bool = True  # W1/W2 shared across the two layers (paper), model="vidsage" only
    # ReLU on the last layer (paper: True). False (GraphSAGE's linear output) measured better: deviations.DEVIATIONS.
    final_activation: bool = False
    epochs: int = 5  # 110 steps on 11,181 nodes; the loss has reached its plateau by then (measured)
    steps_per_epoch: int | None = None  # None: one pass over this rank's seed nodes
    batch_size: int = 512  # anchors per step (per rank under DDP), as in the paper
    fanouts: tuple[int, ...] = (25, 10)  # S1, S2 neighbour samples per layer (paper §3.4)
    # Paper: max lr 1e-5 over 12 V100-hours. In a CPU budget of ~100 steps 1e-5 barely moves the
    # loss; 1e-3 reaches the plateau (deviations.DEVIATIONS).
    lr: float = 1e-3
    warmup_steps: int = 10  # linear warm-up length (paper), then cosine decay to 0
    weight_decay: float = 1e-4  # AdamW decoupled decay; small, the dropout does most regularising
    dropout: float = 0.5  # after each transformation (paper)
    num_negatives: int = 5  # Q negatives per anchor (negative-sampling and contrastive losses)
    # "degree": GraphSAGE's P_n(v) ~ deg(v)^0.75, which the paper's objective follows; or "uniform".
    negative_distribution: str = "degree"
    walk_length: int = 1  # positives: end of a walk of this length (1 = a direct neighbour)
    margin: float = 0.5  # triplet loss margin on Euclidean distance of unit vectors (range 0..2)
    # Scale on the cosine similarities inside the sigmoid / softmax. Embeddings are L2-normalised,
    # so z_u.z_v is in [-1, 1] and sigmoid(+-1) cannot approach 0/1; 1/temperature restores the range.
    temperature: float = 0.1
    seed: int = 0
    device: str = "auto"  # "auto": CUDA when present, else CPU
    amp: bool = True  # autocast (bf16, else fp16 with loss scaling) on CUDA only; ignored on CPU
    checkpoint_every: int = 100  # steps between checkpoints (also written on SIGINT/SIGTERM)
    # True / False / "auto": whole-graph message passing when the graph has at most
    # full_graph_max_nodes nodes (on 11k nodes a 25/10 sample already touches most of the graph).
    full_graph: bool | str = "auto"
    full_graph_max_nodes: int = 20_000
    num_workers: int = 0  # data-loader processes preparing batches (0: in the training process)
    # Stop after this many steps (None: epochs x steps_per_epoch). The lr schedule still spans the
    # whole run, so a few timed steps at scale see the rates a full run would (and resume on).
    max_steps: int | None = None

    def __post_init__(self) -> None:
        if self.negative_distribution not in ("degree", "uniform"):
            raise ValueError(f"TrainConfig.negative_distribution={self.negative_distribution!r}: "
                             "expected 'degree' or 'uniform'")
        if self.loss not in LOSSES:
            raise ValueError(f"TrainConfig.loss={self.loss!r}: expected one of {LOSSES}")
        if self.full_graph not in (True, False, "auto"):
            raise ValueError(f"TrainConfig.full_graph={self.full_graph!r}: expected True, False or 'auto'")
        for name in ("hidden_dim", "out_dim", "epochs", "batch_size", "num_negatives", "walk_length",
                     "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ValueError(f"TrainConfig.{name}={getattr(self, name)!r} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ValueError(f"TrainConfig.max_steps={self.max_steps!r} must be >= 1 or None")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            raise ValueError(f"TrainConfig.steps_per_epoch={self.steps_per_epoch!r} must be >= 1 or None")
        # JSON round trips turn tuples into lists; keep the frozen dataclass hashable and comparable.
        object.__setattr__(self, "fanouts", tuple(int(f) for f in self.fanouts))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "TrainConfig":
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


# Measurements behind TrainConfig's defaults (real YouTube-8M sample, 11,181 train+val videos,
# rgb+audio L2-normalised, graph "lite25" = graph.lite_graph(k=25, tau=-1), "gv" =
# graph.vidsage_graph with the "proxy-audio" object source (defaults). probe = val GAP of a 10-NN
# softmax-weighted label vote among train videos (cosine, embedding space); raw features 0.5643.
# Regenerated by bench_train_defaults.py (handed to the coordinator for benchmarks/ with this
# module; "--only-defaults" re-measures the last two rows). The sweep rows ran with
# VidSageConv's sum aggregation as a CSR sparse matmul (identical outputs, faster); the last two
# rows are TrainConfig() itself with the repository model, 1 CPU thread on a shared 2-core machine.
_DEFAULTS_MEASUREMENT = """
graph   hidden lr     epochs temp final_relu  loss first5->last5  probe (epoch: probe)
lite25  128    1e-5   10     0.1  True        22.64 -> 17.94      0.5201
lite25  128    1e-4   10     0.1  True        22.57 -> 4.48       0.4033
lite25  128    1e-3   10     0.1  True        21.55 -> 4.20       0.3085 (2: 0.337, 5: 0.309)
lite25  128    1e-3   5      0.5  True        6.42 -> 4.13        0.4236 (1: 0.419, 3: 0.430)
lite25  128    1e-3   5      1.0  True        5.15 -> 4.13        0.3943 (1: 0.419, 3: 0.385)
lite25  128    1e-3   5      0.1  False       21.19 -> 4.32       0.5091 (1: 0.506, 3: 0.508)
lite25  128    3e-3   5      0.1  False       17.88 -> 4.31       0.5078 (1: 0.496, 3: 0.506)
lite25  128    1e-3   5      0.05 False       42.12 -> 5.84       0.5113 (1: 0.509, 3: 0.512)
lite25  128    1e-3   5      1.0  False       5.13 -> 4.00        0.4936 (1: 0.497, 3: 0.494)
lite25  256    1e-3   5      0.1  False       17.81 -> 4.04       0.5161 (1: 0.518, 3: 0.516)
gv      128    1e-3   5      0.1  False       13.24 -> 4.50       0.3218 (1: 0.308, 3: 0.320)
untrained model (final_relu True / False) on lite25: 0.5204 / 0.5229; on gv (False): 0.2780
TrainConfig() lite25: 110 steps in 333 s (3.02 s/step); epoch-mean loss 10.71 5.01 4.62 4.51 4.42; probe 0.5091
TrainConfig() gv:     110 steps in 268 s (2.44 s/step); epoch-mean loss 7.64 4.68 4.53 4.54 4.50; probe 0.3225
"""


@dataclass
class TrainResult:
    """What ``train`` returns.

    Attributes:
        model: the trained model (unwrapped from DDP), in eval mode, on the training device.
        history: one dict per step: ``step`` (1-based), ``epoch`` (0-based), ``loss`` (mean over
            ranks under DDP), ``lr`` (the rate used for that step), ``nodes`` (nodes whose features the
            step read: the sampled subgraph, or all N in whole-graph mode), ``time`` (training seconds
            so far, excluding the time between a kill and its resume).
        out_dir: where config.json, history.json, checkpoint.pt and model.pt were written.
        config: the configuration trained with.
        resolved: device, full-graph choice, sampler backend, versions, step counts.
    """

    model: nn.Module
    history: list[dict]
    out_dir: Path
    config: TrainConfig
    resolved: dict


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------
def lr_factor(step: int, warmup_steps: int, total_steps: int) -> float:
    """Multiplier on the peak lr for 0-based ``step``: linear warm-up, then cosine decay to 0.

    Step 0 runs at ``1/warmup_steps`` of the peak, step ``warmup_steps - 1`` at the peak, and the
    cosine reaches 0 at ``step == total_steps`` (one past the last step).
    """
    if warmup_steps > 0 and step < warmup_steps:
        return (step + 1) / warmup_steps
    decay_steps = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / decay_steps)
    return 0.5 * (1.0 + math.cos(math.pi * progress))


def mix_seed(*parts: int) -> int:
    """A 63-bit seed from several integers (independent streams per rank/epoch/step)."""
    return int(np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts]).generate_state(2, np.uint64)[0]
               >> np.uint64(1))


def _rng_state() -> dict:
    # NumPy's state is stored as tensors and numbers so that checkpoints load with weights_only.
    name, keys, pos, has_gauss, cached = np.random.get_state()
    numpy_state = {"name": str(name), "keys": torch.from_numpy(np.asarray(keys, dtype=np.int64)),
                   "pos": int(pos), "has_gauss": int(has_gauss), "cached_gaussian": float(cached)}
    state = {"torch": torch.get_rng_state(), "numpy": numpy_state, "python": random.getstate()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    s = state["numpy"]
    np.random.set_state((s["name"], s["keys"].numpy().astype(np.uint32), s["pos"], s["has_gauss"],
                         s["cached_gaussian"]))
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


# batches: a pure function of (seed, rank, epoch, position)
# --------------------------------------------------------------------------------------------
@dataclass
class _Batch:
    anchors: torch.Tensor  # long [B]
    seeds: torch.Tensor  # long [S] unique nodes to embed
    inv: torch.Tensor  # long [B + B + B*Q] positions in seeds of anchors, positives, negatives
    pos_valid: torch.Tensor  # bool [B]: the anchor has a positive (not isolated)
    neg_valid: torch.Tensor | None  # bool [B, Q]: the negative is a true non-neighbour
    sub: Any  # SampledSubgraph or None (full-graph mode)


class _BatchMaker:
    """Builds step batches; picklable so data-loader workers can run it."""

    def __init__(self, graph, config: TrainConfig, rank: int, world: int, full: bool, sampler) -> None:
        self.rowptr, self.col, _ = graph_in_csr(graph)
        self.num_nodes = int(graph.num_nodes)
        self.config = config
        self.rank, self.world = rank, world
        self.full = full
        self.sampler = sampler
        self.shard_len = self.num_nodes // world  # equal shards: every rank runs the same step count

    def steps_per_epoch(self) -> int:
        if self.config.steps_per_epoch is not None:
            return int(self.config.steps_per_epoch)
        return max(1, math.ceil(self.shard_len / self.config.batch_size))

    def permutation(self, epoch: int) -> torch.Tensor:
        """This epoch's node permutation; identical on every rank (same seed), so shards are disjoint."""
        g = torch.Generator().manual_seed(mix_seed(self.config.seed, 0x9E3779B9, epoch))
        return torch.randperm(self.num_nodes, generator=g)

    def shard(self, perm: torch.Tensor) -> torch.Tensor:
        return perm[self.rank::self.world][: self.shard_len]

    def __call__(self, shard: torch.Tensor, epoch: int, position: int) -> _Batch:
        cfg = self.config
        bsz = cfg.batch_size
        if cfg.steps_per_epoch is None:  # one pass: the last batch may be short
            anchors = shard[position * bsz:(position + 1) * bsz]
        else:  # fixed-length epochs cycle through the shard
            anchors = shard[(position * bsz + torch.arange(bsz)) % shard.numel()]
        g = torch.Generator().manual_seed(mix_seed(cfg.seed, self.rank, epoch, position))
        pos, pos_valid = sample_positives(self.rowptr, self.col, anchors, cfg.walk_length, g)
        parts, neg_valid = [anchors, pos], None
        if cfg.loss != "contrastive":  # InfoNCE uses the other positives of the batch as negatives
            neg, neg_valid = sample_negatives(self.num_nodes, (anchors.numel(), cfg.num_negatives), g,
                                              self.rowptr, self.col, anchors, cfg.negative_distribution)
            parts.append(neg.reshape(-1))
        seeds, inv = torch.unique(torch.cat(parts), return_inverse=True)
        sub = None
        if not self.full:
            sub = sample_subgraph(self.sampler, seeds, mix_seed(cfg.seed, self.rank, epoch, position, 1))
        return _Batch(anchors, seeds, inv, pos_valid, neg_valid, sub)


def sample_subgraph(sampler, seeds: torch.Tensor, seed: int):
    """Neighbour sample around ``seeds`` with the sampler's generator re-seeded for this batch."""
    gen = getattr(sampler, "generator", None)
    if isinstance(gen, torch.Generator):
        gen.manual_seed(seed)
    elif hasattr(sampler, "reseed"):
        sampler.reseed(seed)
    elif hasattr(sampler, "rng") and isinstance(sampler.rng, np.random.Generator):
        sampler.rng = np.random.default_rng(seed)
    return sampler.sample(seeds)


class _EpochBatches(torch.utils.data.Dataset):
    def __init__(self, maker: _BatchMaker, shard: torch.Tensor, epoch: int, start: int, stop: int) -> None:
        self.maker, self.shard, self.epoch, self.start, self.stop = maker, shard, epoch, start, stop

    def __len__(self) -> int:
        return self.stop - self.start

    def __getitem__(self, i: int) -> _Batch:
        return self.maker(self.shard, self.epoch, self.start + i)


def _batches(maker: _BatchMaker, shard: torch.Tensor, epoch: int, start: int, stop: int, num_workers: int):
    if num_workers <= 0:
        for position in range(start, stop):
            yield maker(shard, epoch, position)
        return
    # An explicit generator: otherwise the loader draws its worker base seed from torch's global
    # RNG, shifting the dropout stream and breaking exact resume. Batches do not use it anyway.
    loader = torch.utils.data.DataLoader(_EpochBatches(maker, shard, epoch, start, stop), batch_size=None,
                                         shuffle=False, num_workers=num_workers, collate_fn=_identity,
                                         generator=torch.Generator().manual_seed(epoch))
    yield from loader


def _identity(batch: _Batch) -> _Batch:
    return batch


# --------------------------------------------------------------------------------------------
# loss
# --------------------------------------------------------------------------------------------
def compute_loss(config: TrainConfig, z_u: torch.Tensor, z_pos: torch.Tensor, z_neg: torch.Tensor | None,
                 pos_valid: torch.Tensor | None = None, neg_valid: torch.Tensor | None = None) -> torch.Tensor:
    """The configured loss.

    Args:
        config: chooses the loss and its margin / temperature.
        z_u: anchors [B, d]; z_pos: positives [B, d]; z_neg: negatives [B, Q, d] (None for
            "contrastive", which uses in-batch negatives).
        pos_valid: bool [B], False for anchors without a positive (isolated nodes).
        neg_valid: bool [B, Q], False for negatives that could not be drawn from non-neighbours.

    Returns:
        Scalar loss.
    """
    if config.loss == "negative_sampling":
        return negative_sampling_loss(z_u, z_pos, z_neg, temperature=config.temperature,
                                      pos_mask=pos_valid, neg_mask=neg_valid)
    if config.loss == "triplet":
        mask = None
        if pos_valid is not None or neg_valid is not None:
            mask = torch.ones(z_neg.shape[:2], dtype=torch.bool, device=z_u.device)
            if pos_valid is not None:
                mask = mask & pos_valid.to(z_u.device)[:, None]
            if neg_valid is not None:
                mask = mask & neg_valid.to(z_u.device)
        return triplet_loss(z_u, z_pos, z_neg, margin=config.margin, mask=mask)
    return contrastive_loss(z_u, z_pos, temperature=config.temperature, mask=pos_valid)


# --------------------------------------------------------------------------------------------
# distributed
# --------------------------------------------------------------------------------------------
@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    backend: str | None = None
    owns_group: bool = False

    @property
    def enabled(self) -> bool:
        return self.world > 1


def _init_distributed(device: str) -> _Dist:
    """Join the process group torchrun (or the caller) described in RANK/WORLD_SIZE/LOCAL_RANK."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return _Dist(dist.get_rank(), dist.get_world_size(), int(os.environ.get("LOCAL_RANK", 0)),
                     dist.get_backend(), False)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", 0))
    backend = "nccl" if device.startswith("cuda") else "gloo"
    if backend == "nccl":
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend=backend)
    return _Dist(rank, world, local_rank, backend, True)


# --------------------------------------------------------------------------------------------
# checkpoints
# --------------------------------------------------------------------------------------------
def atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` to a temporary file, then rename: a kill mid-write never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(obj, tmp)
    tmp.replace(path)  # a kill mid-write never leaves a truncated checkpoint


def load_model(path: str | Path, device: str = "cpu") -> nn.Module:
    """Rebuild a trained model from ``model.pt`` (or a ``checkpoint.pt``), in eval mode.

    Args:
        path: file written by :func:`train`, or its run directory.
        device: where to put it.
    """
    from vidsage_core.safe_io import UnsafeFileError, load_tensor_file

    path = Path(path)
    if path.is_dir():
        path = path / MODEL
    blob = load_tensor_file(path, "model")  # state_dict + plain model_kwargs: no pickled code
    if not isinstance(blob, dict) or not {"model", "model_kwargs"} <= set(blob):
        raise UnsafeFileError(f"{path}: not a VidSage model file (expected the keys 'model' and "
                              "'model_kwargs' written by vidsage_core.train)")
    model = build_model(**blob["model_kwargs"])
    model.load_state_dict(blob["model"])
    return model.to(resolve_device(device)).eval()


class StopRequest:
    """SIGINT/SIGTERM become a flag checked between steps, so a checkpoint is always consistent."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.forced = False
        self._old: dict[int, Any] = {}

    def install(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return  # signal handlers can only be set from the main thread
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if self.signum is not None and signum == signal.SIGINT:
            self.forced = True
            raise KeyboardInterrupt  # second Ctrl-C: stop now, without a checkpoint
        self.signum = signum

    def restore(self) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, signal.SIG_DFL if old is None else old)  # None: set outside Python
        self._old.clear()

    def reraise(self) -> None:
        """Deliver the signal again with the handler the caller had (default: die / KeyboardInterrupt)."""
        signum, self.signum = self.signum, None
        self.restore()
        if signum is not None:
            signal.raise_signal(signum)
        raise KeyboardInterrupt  # a handler that returned normally still stops training


# --------------------------------------------------------------------------------------------
# train
# --------------------------------------------------------------------------------------------
def train(x: np.ndarray, graph, config: TrainConfig = TrainConfig(), out_dir: str | Path = "run",
          resume: bool = False, progress: bool = True,
          callback: Callable[[int, float, nn.Module], None] | None = None) -> TrainResult:
    """Train a GNN on ``graph`` without labels (paper §3.4).

    Writes ``out_dir/config.json`` (config + resolved device, sampler backend, versions),
    ``out_dir/history.json`` (per step: step, epoch, loss, lr), ``out_dir/checkpoint.pt`` every
    ``checkpoint_every`` steps, at the end and on SIGINT/SIGTERM/KeyboardInterrupt (after which
    the interrupt is re-raised), and the final ``out_dir/model.pt`` (see :func:`load_model`).
    Under DDP (RANK/WORLD_SIZE in the environment) only rank 0 writes.

    Args:
        x: [N, D] node features (L2-normalised video features): an in-memory array, or a float16/
            float32 memmap store (``store.open_store``) from which each step reads only the rows of
            its sampled subgraph (whole-graph mode, for small graphs, holds them as float32).
        graph: VideoGraph with N nodes.
        config: hyper-parameters.
        out_dir: run directory.
        resume: continue exactly from ``out_dir/checkpoint.pt`` (model, optimizer, scheduler,
            AMP scaler, step, epoch position, permutation and RNG states); starts from scratch
            when there is no checkpoint. The config must match the checkpoint's except for
            checkpoint_every / num_workers / device.
        progress: tqdm bar with the loss.
        callback: called on every rank after each step as ``callback(step, loss, model)``
            (1-based step, unwrapped model); raising KeyboardInterrupt from it behaves like
            Ctrl-C after that step.

    Returns:
        TrainResult.
    """
    import torch.distributed as dist
    from tqdm.auto import tqdm

    out_dir = Path(out_dir)
    device = resolve_device(config.device)
    ctx = _init_distributed(device)
    if ctx.enabled and device.startswith("cuda"):
        device = f"cuda:{ctx.local_rank}"
    is_main = ctx.rank == 0
    try:
        seed_everything(config.seed + ctx.rank)  # ranks draw different dropout masks
        if not isinstance(x, (np.ndarray, torch.Tensor)):
            x = np.asarray(x)  # an ndarray or memmap store is used as is: rows are read per step
        n = int(graph.num_nodes)
        if x.ndim != 2 or x.shape[0] != n:
            raise ValueError(f"x has shape {x.shape} but the graph has {n} nodes")
        full = (n <= config.full_graph_max_nodes) if config.full_graph == "auto" else bool(config.full_graph)
        sampler, sampler_backend = None, "full-graph"
        if not full:
            from vidsage_core.sampler import NeighborSampler

            sampler = NeighborSampler(graph, fanouts=config.fanouts, seed=config.seed + ctx.rank)
            # Always our own sampler (re-seeded per batch, so resumes are exact); PyG's
            # NeighborLoader draws from the global RNG and would break that.
            sampler_backend = f"{type(sampler).__name__}({getattr(sampler, 'backend', 'torch')})"
        maker = _BatchMaker(graph, config, ctx.rank, ctx.world, full, sampler)
        steps_per_epoch = maker.steps_per_epoch()
        total_steps = steps_per_epoch * config.epochs
        last_step = total_steps if config.max_steps is None else min(total_steps, config.max_steps)

        # Whole-graph mode (small graphs) holds the features as one float32 tensor; sampled mode
        # reads each step's rows from x (an in-memory array or a memmap store) and never holds
        # all N x D features.
        x_t = as_float_tensor(x).to(device) if full else None

        model_kwargs = dict(name=config.model, in_dim=int(x.shape[1]), hidden_dim=config.hidden_dim,
                            out_dim=config.out_dim, dropout=config.dropout, heads=config.heads,
                            final_activation=config.final_activation, share_weights=config.share_weights)
        model = build_model(**model_kwargs).to(device)
        module = model
        # Whole-graph steps pass the same graph every time: its adjacency is built once.
        graph_args = whole_graph_args(module, graph.edge_index.long().to(device),
                                      graph.edge_weight.float().to(device), n) if full else None
        if ctx.enabled:
            model = nn.parallel.DistributedDataParallel(
                module, device_ids=[ctx.local_rank] if device.startswith("cuda") else None)
        optimizer = torch.optim.AdamW(module.parameters(), lr=config.lr, weight_decay=config.weight_decay)
        scheduler = torch.optim.lr_scheduler.LambdaLR(
            optimizer, lambda s: lr_factor(s, config.warmup_steps, total_steps))
        use_amp = config.amp and device.startswith("cuda")
        amp_dtype = torch.bfloat16 if use_amp and torch.cuda.is_bf16_supported() else torch.float16
        scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)

        step, history, perm, perm_epoch = 0, [], None, -1
        ckpt_path = out_dir / CHECKPOINT
        if resume and ckpt_path.exists():
            from vidsage_core.safe_io import load_tensor_file

            ckpt = load_tensor_file(ckpt_path, "checkpoint")
            _check_resumable(TrainConfig.from_dict(ckpt["config"]), config, ckpt_path)
            module.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            scheduler.load_state_dict(ckpt["scheduler"])
            scaler.load_state_dict(ckpt["scaler"])
            step, history = int(ckpt["step"]), list(ckpt["history"])
            perm, perm_epoch = ckpt["perm"], int(ckpt["perm_epoch"])
            rng = ckpt["rng"]
            if len(rng) == ctx.world:
                _set_rng_state(rng[ctx.rank])
            else:  # different world size: the run continues, but not bit-exactly
                print(f"warning: {ckpt_path} was written by {len(rng)} ranks, resuming with {ctx.world}; "
                      "dropout RNG re-seeded", file=sys.stderr)
        elif resume and is_main:
            print(f"note: --resume but no {ckpt_path}; starting from scratch", file=sys.stderr)

        resolved = dict(device=device, full_graph=full, sampler_backend=sampler_backend,
                        torch_version=str(torch.__version__), torch_geometric_version=_pyg_version(),
                        world_size=ctx.world, dist_backend=ctx.backend, amp_dtype=str(amp_dtype) if use_amp else None,
                        num_nodes=n, num_edges=int(graph.edge_index.shape[1]), in_dim=int(x.shape[1]),
                        steps_per_epoch=steps_per_epoch, total_steps=total_steps,
                        graph_meta=dict(getattr(graph, "meta", {}) or {}), model_kwargs=model_kwargs)
        if is_main:
            out_dir.mkdir(parents=True, exist_ok=True)
            save_json({"config": config.to_dict(), "resolved": resolved}, out_dir / "config.json")

        saved_step = -1
        rng_at_boundary = _rng_state()

        def checkpoint() -> None:
            nonlocal saved_step
            if saved_step == step:
                return
            rng = [rng_at_boundary]
            if ctx.enabled:
                gathered: list = [None] * ctx.world
                dist.all_gather_object(gathered, rng_at_boundary)
                rng = gathered
            if is_main:
                atomic_save({"config": config.to_dict(), "model": module.state_dict(),
                              "optimizer": optimizer.state_dict(), "scheduler": scheduler.state_dict(),
                              "scaler": scaler.state_dict(), "step": step, "perm": perm, "perm_epoch": perm_epoch,
                              "history": history, "rng": rng, "model_kwargs": model_kwargs,
                              "world_size": ctx.world}, ckpt_path)
                save_json(history, out_dir / "history.json")
            saved_step = step

        stop = StopRequest()
        stop.install()
        t0 = time.perf_counter() - (history[-1]["time"] if history else 0.0)  # resumed runs keep counting
        bar = tqdm(total=last_step, initial=step, desc=f"train {config.model}/{config.loss}",
                   disable=not (progress and is_main), dynamic_ncols=True)
        model.train()
        try:
            while step < last_step:
                epoch, position = divmod(step, steps_per_epoch)
                if perm_epoch != epoch:
                    perm, perm_epoch = maker.permutation(epoch), epoch
                shard = maker.shard(perm)
                for batch in _batches(maker, shard, epoch, position, steps_per_epoch, config.num_workers):
                    loss = _train_step(model, batch, x if x_t is None else x_t, graph_args, config,
                                       optimizer, scaler, use_amp, amp_dtype, device)
                    nodes = n if batch.sub is None else int(batch.sub.n_id.numel())
                    lr_used = optimizer.param_groups[0]["lr"]
                    scheduler.step()
                    step += 1
                    flag = 1.0 if stop.signum is not None else 0.0
                    if ctx.enabled:  # mean loss for the log; any rank's signal stops every rank together
                        buf = torch.tensor([loss, flag], dtype=torch.float64, device=device)
                        dist.all_reduce(buf)
                        loss, flag = float(buf[0]) / ctx.world, float(buf[1])
                    history.append({"step": step, "epoch": epoch, "loss": loss, "lr": lr_used, "nodes": nodes,
                                    "time": round(time.perf_counter() - t0, 3)})
                    rng_at_boundary = _rng_state()
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr_used:.2e}")
                    if step % config.checkpoint_every == 0:
                        checkpoint()
                    if callback is not None:
                        callback(step, loss, module)
                    if not ctx.enabled and stop.signum is not None:
                        flag = 1.0  # single process: a signal raised during the callback counts now
                    if flag > 0:
                        if stop.signum is None:
                            stop.signum = signal.SIGTERM  # another rank was signalled
                        raise _Stop()
                    if step >= last_step:
                        break
        except (KeyboardInterrupt, _Stop) as exc:
            bar.close()
            if not stop.forced:  # a second Ctrl-C may have landed mid-step: state not consistent
                checkpoint()
            if is_main:
                print(f"interrupted after step {step}; checkpoint in {ckpt_path}; continue with --resume",
                      file=sys.stderr)
            try:
                if isinstance(exc, _Stop) or stop.signum is not None:
                    stop.reraise()
                raise
            except KeyboardInterrupt:
                raise TrainingInterrupted(step, ckpt_path) from None
        finally:
            bar.close()
            stop.restore()

        checkpoint()
        if is_main:
            atomic_save({"model": module.state_dict(), "model_kwargs": model_kwargs,
                          "config": config.to_dict(), "resolved": resolved}, out_dir / MODEL)
            save_json(history, out_dir / "history.json")
        module.eval()
        return TrainResult(module, history, out_dir, config, resolved)
    finally:
        if ctx.owns_group:
            # Tear down in step: drop the DDP wrapper (its reducer holds the gloo group) while the
            # peers are still connected, meet at a barrier, then destroy the group. Letting the
            # wrapper die with this frame after destroy_process_group() left a rank blocked in the
            # gloo destructor now and then once its peer had exited (seen in CI as a hung test).
            model = None
            gc.collect()
            dist.barrier()
            dist.destroy_process_group()


class _Stop(Exception):
    """Internal: a signal asked training to stop at this step boundary."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C stopped :func:`train` after ``step`` steps; the state is in ``checkpoint``.

    A KeyboardInterrupt, so callers that stop on Ctrl-C still do; the CLI turns it into its one
    line and exit code 130.
    """

    def __init__(self, step: int, checkpoint: Path) -> None:
        super().__init__(f"interrupted after step {step}; checkpoint in {checkpoint}; continue with --resume")
        self.step, self.checkpoint = step, checkpoint


def _train_step(model: nn.Module, batch: _Batch, x: np.ndarray | torch.Tensor, graph_args: tuple | None,
                config: TrainConfig, optimizer, scaler, use_amp: bool, amp_dtype, device: str) -> float:
    optimizer.zero_grad(set_to_none=True)
    with torch.autocast(device_type="cuda", dtype=amp_dtype, enabled=use_amp):
        if batch.sub is None:
            z_all = model(x, *graph_args)
            z = z_all[batch.seeds.to(device)]
        else:
            z = _encode_sampled(model, x, batch.sub, device)
        z = z.float()
        b = batch.anchors.numel()
        inv = batch.inv.to(device)
        z_u, z_pos = z[inv[:b]], z[inv[b:2 * b]]
        z_neg = z[inv[2 * b:]].reshape(b, config.num_negatives, -1) if batch.neg_valid is not None else None
        neg_valid = None if batch.neg_valid is None else batch.neg_valid.to(device)
        loss = compute_loss(config, z_u, z_pos, z_neg, batch.pos_valid.to(device), neg_valid)
    scaler.scale(loss).backward()
    scaler.step(optimizer)
    scaler.update()
    return float(loss.detach())


def _encode_sampled(model: nn.Module, x: np.ndarray, sub, device: str) -> torch.Tensor:
    """Seed embeddings [batch_size, d] of a sampled subgraph, through the (possibly DDP) wrapper.

    The subgraph's feature rows are read from ``x`` (array or memmap store) for this step only.

    When the sampler reports its hop structure and the model accepts it (see
    ``model.hop_slices``), layers skip the rows the seeds do not depend on: identical seed
    outputs, about half the work.
    """
    ew = None if getattr(sub, "edge_weight", None) is None else sub.edge_weight.float().to(device)
    args = (gather_rows(x, sub.n_id, device), sub.edge_index.to(device), ew)
    nodes, edges = getattr(sub, "num_sampled_nodes", None), getattr(sub, "num_sampled_edges", None)
    layers = num_layers(model)
    if (nodes is not None and edges is not None and len(nodes) == layers + 1 and len(edges) == layers
            and _accepts_hops(unwrap(model))):
        return model(*args, num_sampled_nodes_per_hop=list(nodes), num_sampled_edges_per_hop=list(edges))
    return model(*args)[: sub.batch_size]


def _accepts_hops(module: nn.Module) -> bool:
    import inspect

    try:
        return "num_sampled_nodes_per_hop" in inspect.signature(module.forward).parameters
    except (TypeError, ValueError):
        return False


def _check_resumable(saved: TrainConfig, now: TrainConfig, path: Path) -> None:
    diff = [f.name for f in dataclasses.fields(TrainConfig)
            if f.name not in _RESUME_FREE_FIELDS and getattr(saved, f.name) != getattr(now, f.name)]
    if diff:
        detail = ", ".join(f"{k}: {getattr(saved, k)!r} -> {getattr(now, k)!r}" for k in diff)
        raise ValueError(f"cannot resume from {path}: config differs ({detail})")


def _pyg_version() -> str | None:
    try:
        import torch_geometric

        return torch_geometric.__version__
    except ImportError:
        return None


# --------------------------------------------------------------------------------------------
# command line
# --------------------------------------------------------------------------------------------
def load_graph(path: str | Path):
    """Read a graph saved with ``torch.save``: a VideoGraph, or a dict with its fields."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"--graph {path}: no such file")
    from vidsage_core import graph as graph_mod
    from vidsage_core.safe_io import load_tensor_file

    blob = load_tensor_file(path, "graph")  # weights_only: a graph file never runs code
    if isinstance(blob, dict):
        missing = {"edge_index", "edge_weight", "num_nodes"} - set(blob)
        if missing:
            raise ValueError(f"--graph {path}: dict lacks {sorted(missing)}")
        return graph_mod.VideoGraph(blob["edge_index"].long(), blob["edge_weight"].float(),
                                    int(blob["num_nodes"]), dict(blob.get("meta", {})))
    raise ValueError(f"--graph {path}: expected a dict with edge_index, edge_weight, num_nodes "
                     f"(VideoGraph.save), got {type(blob).__name__}")


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Show defaults and keep the epilog's line breaks."""


def add_train_arguments(parser: argparse.ArgumentParser) -> None:
    """Flags of ``vidsage train`` / ``python -m vidsage_core.train``."""
    d = TrainConfig()
    parser.description = (
        "Train a VidSage GNN without labels on a prepared graph (features .npy + graph .pt).\n"
        "Runs in one process, or as DistributedDataParallel under torchrun (gloo on CPU, NCCL on\n"
        "GPUs): every rank trains on a disjoint shard of the seed nodes, rank 0 writes the run.\n"
        "Writes DIR/config.json, history.json, checkpoint.pt, model.pt and embeddings.npy.")
    parser.formatter_class = _HelpFormatter
    parser.epilog = (
        "examples:\n"
        "  python -m vidsage_core.train --features x.npy --graph g.pt --out results/runs/demo\n"
        "  torchrun --nproc_per_node 2 -m vidsage_core.train --features x.npy --graph g.pt --out DIR\n"
        "  torchrun --nnodes 2 --node_rank R --master_addr HOST --nproc_per_node 8 "
        "-m vidsage_core.train ...\n"
        "  ... --resume   (after a kill / SIGTERM: continues exactly from DIR/checkpoint.pt)")
    io = parser.add_argument_group("inputs and outputs")
    io.add_argument("--features", required=True, default=argparse.SUPPRESS, metavar="PATH.npy",
                    help="float16/float32 [N, D] node features (.npy, memory-mapped), row i = node i of the graph")
    io.add_argument("--graph", required=True, default=argparse.SUPPRESS, metavar="PATH.pt",
                    help="graph saved with torch.save (a VideoGraph or a dict with edge_index, edge_weight, num_nodes)")
    io.add_argument("--out", required=True, default=argparse.SUPPRESS, metavar="DIR",
                    help="run directory: config.json, history.json, checkpoint.pt, model.pt, embeddings.npy")
    io.add_argument("--resume", action="store_true", help="continue exactly from DIR/checkpoint.pt if present")
    io.add_argument("--no-embed", action="store_true", help="do not write DIR/embeddings.npy after training")
    io.add_argument("--no-progress", action="store_true", help="no progress bar")
    hp = parser.add_argument_group("model and optimisation (TrainConfig)")
    hp.add_argument("--model", default=d.model, help="GNN: vidsage, sage-mean, sage-max, sage-sum, gcn, gat")
    hp.add_argument("--loss", default=d.loss, choices=LOSSES, help="unsupervised objective")
    hp.add_argument("--hidden-dim", type=int, default=d.hidden_dim)
    hp.add_argument("--out-dim", type=int, default=d.out_dim)
    hp.add_argument("--epochs", type=int, default=d.epochs)
    hp.add_argument("--steps-per-epoch", type=int, default=d.steps_per_epoch,
                    help="default: one pass over the seed nodes")
    hp.add_argument("--max-steps", type=int, default=d.max_steps,
                    help="stop after this many steps (the lr schedule still spans all epochs)")
    hp.add_argument("--lr", type=float, default=d.lr, help="peak learning rate (paper: 1e-5)")
    hp.add_argument("--warmup-steps", type=int, default=d.warmup_steps)
    hp.add_argument("--weight-decay", type=float, default=d.weight_decay)
    hp.add_argument("--dropout", type=float, default=d.dropout)
    hp.add_argument("--batch-size", type=int, default=d.batch_size, help="anchor nodes per step (per rank)")
    hp.add_argument("--fanouts", type=int, nargs="+", default=list(d.fanouts), help="neighbours sampled per layer")
    hp.add_argument("--num-negatives", type=int, default=d.num_negatives)
    hp.add_argument("--negative-distribution", choices=("degree", "uniform"), default=d.negative_distribution,
                    help="negatives ~ degree^0.75 (GraphSAGE) or uniform")
    hp.add_argument("--walk-length", type=int, default=d.walk_length, help="positives: random-walk length")
    hp.add_argument("--heads", type=int, default=d.heads, help="attention heads (gat)")
    # Booleans as --x / --no-x with TrainConfig's default, so a bare command line trains what
    # TrainConfig() (and `vidsage run`) trains.
    hp.add_argument("--share-weights", action=argparse.BooleanOptionalAction, default=d.share_weights,
                    help="vidsage: W1/W2 shared across the two layers (paper)")
    hp.add_argument("--final-activation", action=argparse.BooleanOptionalAction, default=d.final_activation,
                    help="ReLU on the last layer (paper: on; off here, see deviations.DEVIATIONS)")
    hp.add_argument("--margin", type=float, default=d.margin, help="triplet loss margin")
    hp.add_argument("--temperature", type=float, default=d.temperature)
    hp.add_argument("--full-graph", choices=("auto", "true", "false"), default="auto",
                    help=f"whole-graph message passing (auto: graphs of <= {d.full_graph_max_nodes} nodes)")
    rt = parser.add_argument_group("runtime")
    rt.add_argument("--seed", type=int, default=d.seed)
    rt.add_argument("--device", default=d.device, help="auto, cpu, cuda")
    rt.add_argument("--amp", action=argparse.BooleanOptionalAction, default=d.amp,
                    help="autocast on CUDA (ignored on CPU)")
    rt.add_argument("--checkpoint-every", type=int, default=d.checkpoint_every, help="steps")
    rt.add_argument("--num-workers", type=int, default=d.num_workers, help="batch-preparing processes")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    full = {"auto": "auto", "true": True, "false": False}[args.full_graph]
    return TrainConfig(model=args.model, loss=args.loss, hidden_dim=args.hidden_dim, out_dim=args.out_dim,
                       epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, batch_size=args.batch_size,
                       fanouts=tuple(args.fanouts), lr=args.lr, warmup_steps=args.warmup_steps,
                       weight_decay=args.weight_decay, dropout=args.dropout, num_negatives=args.num_negatives,
                       walk_length=args.walk_length, margin=args.margin, temperature=args.temperature,
                       negative_distribution=args.negative_distribution, heads=args.heads,
                       share_weights=args.share_weights, final_activation=args.final_activation,
                       seed=args.seed, device=args.device, amp=args.amp,
                       checkpoint_every=args.checkpoint_every, full_graph=full, num_workers=args.num_workers,
                       max_steps=args.max_steps)


def train_command(args: argparse.Namespace) -> int:
    """``vidsage train``: train, then (rank 0) write ``embeddings.npy`` of every node."""
    features = Path(args.features)
    if not features.is_file():
        raise FileNotFoundError(f"--features {features}: no such file")
    try:
        x = open_store(features)  # memory-mapped: every rank reads only its steps' rows
    except (ValueError, OSError) as e:
        raise ValueError(f"--features {features}: not a .npy array ({e})") from None
    graph = load_graph(args.graph)
    if x.ndim != 2 or x.shape[0] != graph.num_nodes:
        raise ValueError(f"--features {features} has shape {tuple(x.shape)} but --graph {args.graph} "
                         f"has {graph.num_nodes} nodes; expected [{graph.num_nodes}, D]")
    config = config_from_args(args)
    result = train(x, graph, config, args.out, resume=args.resume, progress=not args.no_progress)
    if int(os.environ.get("RANK", "0")) == 0:
        if not args.no_embed:
            # Written straight into the output .npy, block by block (no [N, d] copy in RAM).
            out = np.lib.format.open_memmap(Path(args.out) / "embeddings.npy", mode="w+", dtype=np.float32,
                                            shape=(graph.num_nodes, config.out_dim))
            embed(result.model, x, graph, device=result.resolved["device"], out=out, work_dir=args.out)
            out.flush()
            del out
        last = result.history[-1]["loss"] if result.history else float("nan")
        print(f"trained {len(result.history)} steps, final loss {last:.4f}; run in {args.out}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from vidsage_core.cli import run_command_politely

    argv = sys.argv[1:] if argv is None else list(argv)
    parser = argparse.ArgumentParser(prog="python -m vidsage_core.train")
    add_train_arguments(parser)
    parser.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    args = parser.parse_args(argv)
    return run_command_politely(train_command, args, "train", args.debug)


if __name__ == "__main__":
    raise SystemExit(main())
