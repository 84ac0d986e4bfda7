"""Downstream classifier heads on frozen features: YouTube-8M's baseline models in torch.

Table 2 of the paper compares VidSage embeddings with the YouTube-8M baselines. This module
trains those baselines (and the same heads on any embedding) and scores them with
:mod:`vidsage_core.metrics`.

Video-level heads (:data:`HEADS`), inputs ``X`` float32 ``[N, D]``:

* ``logistic`` -- one-vs-rest logistic regression (linear + sigmoid, cross-entropy summed over
  classes), YouTube-8M's ``LogisticModel``.
* ``hinge`` -- the same linear scorer trained with YouTube-8M's ``HingeLoss`` (labels mapped to
  +-1, ``max(0, b - y * z)`` summed over classes) on the linear margin ``z``; scores are
  ``sigmoid(z)`` (monotone, so rankings are the margin's; keeps scores in [0, 1]). The starter
  code applies the same loss to its models' sigmoid outputs ``p``, where with ``b = 1`` the
  hinge never clips (``|y * p| < 1``) and the loss is linear in ``p``; the margin form is the
  usual linear SVM.
* ``moe`` -- YouTube-8M's ``MoeModel``: per class a softmax gate over ``num_mixtures + 1``
  experts, the last a dummy that always says 0, and sigmoid experts;
  ``p = sum_m gate_m * sigmoid(expert_m)`` (:func:`moe_probabilities`, which the fine-tuning
  protocol's MoE classification layer shares).

Frame-level heads (:data:`FRAME_HEADS`), inputs :class:`FrameInput` (or any object with
``frames`` float16 ``[N, F, 1152]`` and ``num_frames`` ``[N]``, e.g. a ``VideoSet`` read with
``keep_frames=True``):

* ``logistic_average`` -- logistic regression on the average of the valid frames.
* ``dbof`` -- Deep Bag of Frames: ``sample_frames`` frames per video, a per-frame projection to a
  ``dbof_cluster_size`` layer (batch norm, ReLU6), max pooling over frames, a hidden layer
  (batch norm, ReLU6), then the MoE classifier (YouTube-8M's ``DbofModel``).
* ``lstm`` -- a ``lstm_layers``-layer LSTM over the valid frames; the last layer's final hidden
  state feeds the MoE classifier (YouTube-8M's ``LstmModel``).
* ``moe_mu_sigma_top5`` -- the MoE on fixed per-video statistics ``[mean; std; top-5]`` of every
  frame dimension (7 x 1152 inputs).

Classes without a positive training example cannot be learned; by default
(``HeadConfig.only_seen_classes``) the heads only model the classes seen in training and
:func:`predict` gives the others score 0, the limit their logistic fit would approach (bias to
minus infinity), at a fraction of the cost (2,777 of 3,862 classes in the real sample's 11,181
training videos).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, NamedTuple

import numpy as np
import scipy.sparse as sp
import torch
from torch import nn
from torch.nn import functional as F

from vidsage_core.metrics import all_metrics
from vidsage_core.precision import resolve_precision, use_bf16_products
from vidsage_core.store import gather_rows
from vidsage_core.utils import resolve_device

__all__ = [
    "HEADS",
    "FRAME_HEADS",
    "HeadConfig",
    "FrameInput",
    "Head",
    "fit_head",
    "predict",
    "evaluate_head",
    "frame_statistics",
]

HEADS = ("logistic", "hinge", "moe")
FRAME_HEADS = ("logistic_average", "dbof", "lstm", "moe_mu_sigma_top5")


# Epochs per head when HeadConfig.epochs is None, from the validation measurements in HeadConfig:
# logistic 8 (inside its plateau, epochs 6-12), hinge 5 (its peak; -0.005 GAP at 8), MoE 5
# (flat from 5 to 6, and each MoE epoch costs ~5 logistic epochs). Heads not listed: 8.
HEAD_EPOCHS = {"logistic": 8, "hinge": 5, "moe": 5}
DEFAULT_HEAD_EPOCHS = 8


@dataclass(frozen=True)
class HeadConfig:
    """Training settings for a downstream head.

    The optimiser defaults were chosen on the real 2018 sample with L2-normalised rgb+audio
    features (1152-d), on a validation split carved from training: hash bucket 1 (2,798 videos)
    as validation, buckets 2-4 (8,383) as training; the test bucket 0 was not looked at. Measured
    validation GAP by epoch (batch 256):

    * logistic, lr 1e-2: 0.574 (6), 0.620 (12), 0.630 (20) -- still creeping up, slow;
    * logistic, lr 3e-2: 0.631 (6), 0.6325 (8), 0.632 (12), 0.630 (20) -- plateau at 6-12;
    * logistic, lr 1e-1: 0.6325 (2), then falls to 0.621 (20) -- overfits;
    * logistic, lr 3e-2, batch 1024: 0.617 (12), 0.6225 (20) -- fewer steps, slower;
    * hinge, lr 3e-2: 0.6157 (5), 0.611 (8); hinge lr 1e-2: 0.611 (10);
    * moe (2 experts), lr 1e-2: 0.580 (5); lr 3e-2: 0.626 (3), 0.6375 (5), 0.638 (6).

    ``vidsage run`` refines lr and epochs per input and head (``pipeline.HEAD_SCHEDULE``, from a
    later validation search over wider inputs: Adam's step wants to shrink as inputs widen).
    """

    # Passes over the training videos; None: the head's entry in HEAD_EPOCHS (measured above),
    # an int: that many for every head.
    epochs: int | None = None
    # Adam step. L2-normalised 1152-d inputs have entries of ~0.03, so useful weights are large
    # (|w| ~ 1-10) and small steps need many epochs; 3e-2 beat 1e-2 on validation for logistic,
    # hinge and MoE, and 1e-1 made logistic overfit after 2 epochs. Tuned for unit-norm rows:
    # raw YouTube-8M features (row norm ~16) overshoot with it (logistic test GAP 0.476 vs 0.652
    # after normalising), so use a ~10x smaller lr for unnormalised inputs.
    lr: float = 3e-2
    # 256 rows per step (~33-44 steps per epoch here): at batch 1024 (4x fewer steps) logistic
    # needed 20 epochs for a lower validation GAP.
    batch_size: int = 256
    # Decoupled (AdamW) weight decay; 0 = plain Adam (not tuned: the per-head epoch counts are
    # the regulariser here).
    weight_decay: float = 0.0
    # YouTube-8M's slim l2_regularizer scale on the weight matrices (0.5 * l2 * sum w^2 added to
    # the loss); 1e-8 is the starter code's default for its video-level models.
    l2_penalty: float = 1e-8
    # Experts per class in the MoE heads: the paper's Table 2 reports a mixture of 2 experts.
    num_mixtures: int = 2
    # Margin b of YouTube-8M's HingeLoss: loss = max(0, b - y * z), y in {-1, +1}.
    hinge_margin: float = 1.0
    # Model only the classes with >= 1 positive in training (others get score 0): they cannot
    # be learned, and the real sample's 11,181 training videos use only 2,777 of 3,862 classes,
    # so this saves ~28% of the compute.
    only_seen_classes: bool = True
    # Frame heads. Small so that they train on CPU; YouTube-8M's larger sizes are in comments.
    sample_frames: int = 30  # DBoF frames sampled per video (YouTube-8M: iterations=30)
    dbof_cluster_size: int = 1024  # YouTube-8M: 8192
    dbof_hidden_size: int = 256  # YouTube-8M: 1024
    lstm_cells: int = 256  # YouTube-8M: 1024
    lstm_layers: int = 2  # YouTube-8M: 2
    max_frames: int = 300  # frames read per video (YouTube-8M videos have <= 300 at 1 fps)
    seed: int = 0  # initialisation, shuffling and frame sampling
    device: str = "auto"  # "auto" -> cuda when present, else cpu
    # Matrix products of the dense layers: "fp32", "bf16" (fp32 weights, bf16 products) or
    # "auto" (bf16 on a CPU with native bf16); vidsage_core.precision has the measurements.
    precision: str = "fp32"

    def epochs_for(self, head: str) -> int:
        """Epochs a head trains for: ``epochs`` when set, else its HEAD_EPOCHS entry."""
        if self.epochs is not None:
            return self.epochs
        return HEAD_EPOCHS.get(head, DEFAULT_HEAD_EPOCHS)


class FrameInput(NamedTuple):
    """Frame-level inputs of the frame heads."""

    frames: np.ndarray  # float16/float32 [N, F, D], zero-padded after num_frames[i]
    num_frames: np.ndarray  # int [N], >= 1


# --------------------------------------------------------------------------- classifier bodies
def prior_logit(p: np.ndarray) -> np.ndarray:
    """Logits of class frequencies ``p`` (clipped to [1e-6, 1 - 1e-6]): the heads' initial biases."""
    p = np.clip(p, 1e-6, 1 - 1e-6)
    return np.log(p / (1 - p))


def moe_probabilities(gate_logits: torch.Tensor, expert_logits: torch.Tensor, num_mixtures: int) -> torch.Tensor:
    """YouTube-8M's MoeModel mixture: ``[B, C*(m+1)]`` gate and ``[B, C*m]`` expert logits ->
    ``[B, C]`` probabilities, softmax gates over m sigmoid experts and a dummy expert that says 0."""
    m, b = num_mixtures, gate_logits.shape[0]
    # Per class the logits sit side by side ([c*(m+1) + j]); the softmax runs over the expert
    # axis moved to the front ([B, m+1, C], one contiguous copy): PyTorch's CPU softmax over a
    # last axis of 3 was 5x slower forward and backward (193 vs 38 ms at 512 x 2,777 classes,
    # ~30 % of a MoE fine-tuning step). Same values up to float rounding (tests/test_evaluate.py).
    gates = torch.softmax(gate_logits.view(b, -1, m + 1).transpose(1, 2).contiguous(), dim=1)
    experts = torch.sigmoid(expert_logits.view(b, -1, m).transpose(1, 2))
    return (gates[:, :m] * experts).sum(1)


def yt8m_cross_entropy(probs: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """YouTube-8M's CrossEntropyLoss on probabilities (epsilon 1e-5), summed over classes, mean over videos."""
    eps = 1e-5
    loss = y * torch.log(probs + eps) + (1 - y) * torch.log(1 - probs + eps)
    return -loss.sum(dim=1).mean()


class _Linear(nn.Module):
    """Linear scorer for ``logistic`` and ``hinge``; starts at zero weights, prior biases."""

    def __init__(self, in_dim: int, num_classes: int, prior: np.ndarray, loss: str, margin: float):
        super().__init__()
        self.fc = nn.Linear(in_dim, num_classes)
        with torch.no_grad():
            # The problem is convex: zero weights are a fine start, and biases at the class
            # prior's logit skip the first epochs that would only learn label frequencies.
            self.fc.weight.zero_()
            self.fc.bias.copy_(torch.from_numpy(prior_logit(prior)).float())
        self.loss_kind = loss
        self.margin = margin

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc(x))

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        z = self.fc(x)
        if self.loss_kind == "logistic":
            return F.binary_cross_entropy_with_logits(z, y, reduction="none").sum(1).mean()
        signs = 2 * y - 1
        return torch.clamp(self.margin - signs * z, min=0).sum(1).mean()

    def l2_weights(self) -> list[torch.Tensor]:
        return [self.fc.weight]


class _Moe(nn.Module):
    """YouTube-8M's MoeModel: gated mixture of sigmoid experts with a dummy expert."""

    def __init__(self, in_dim: int, num_classes: int, num_mixtures: int, prior: np.ndarray):
        super().__init__()
        self.m = num_mixtures
        self.gate = nn.Linear(in_dim, num_classes * (num_mixtures + 1), bias=False)
        self.experts = nn.Linear(in_dim, num_classes * num_mixtures)
        with torch.no_grad():
            # Uniform initial gates give p = m / (m + 1) * expert; prior-logit expert biases
            # start p near the class frequency instead of 0.5 * m / (m + 1).
            self.experts.bias.copy_(
                torch.from_numpy(prior_logit(prior)).float().repeat_interleave(num_mixtures)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return moe_probabilities(self.gate(x), self.experts(x), self.m)

    def loss(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return yt8m_cross_entropy(self(x), y)

    def l2_weights(self) -> list[torch.Tensor]:
        return [self.gate.weight, self.experts.weight]


# --------------------------------------------------------------------------- frame encoders
def _frame_mask(num_frames: torch.Tensor, length: int) -> torch.Tensor:
    return torch.arange(length, device=num_frames.device)[None, :] < num_frames[:, None]


class _FrameAverage(nn.Module):
    """Mean of the valid frames: [B, F, D] -> [B, D]."""

    out_dim_factor = 1

    def forward(
        self,
        frames: torch.Tensor,
        num_frames: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        mask = _frame_mask(num_frames, frames.shape[1]).unsqueeze(-1).to(frames.dtype)
        return (frames * mask).sum(1) / num_frames.clamp(min=1).unsqueeze(-1).to(frames.dtype)


class _Dbof(nn.Module):
    """Deep Bag of Frames encoder (YouTube-8M DbofModel with max pooling)."""

    def __init__(self, in_dim: int, cluster_size: int, hidden_size: int, sample_frames: int):
        super().__init__()
        self.sample_frames = sample_frames
        self.input_bn = nn.BatchNorm1d(in_dim)
        self.cluster = nn.Linear(in_dim, cluster_size, bias=False)
        self.cluster_bn = nn.BatchNorm1d(cluster_size)
        self.hidden = nn.Linear(cluster_size, hidden_size, bias=False)
        self.hidden_bn = nn.BatchNorm1d(hidden_size)

    def _sample(self, num_frames: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        s = self.sample_frames
        n = num_frames.clamp(min=1).to(torch.float32)[:, None]
        if self.training:
            # Uniform with replacement among the valid frames, as YouTube-8M's SampleRandomFrames.
            u = torch.rand(num_frames.shape[0], s, generator=generator, device=num_frames.device)
        else:
            # Evenly spaced at prediction time, so predictions are deterministic.
            u = (torch.arange(s, device=num_frames.device, dtype=torch.float32) + 0.5) / s
            u = u.expand(num_frames.shape[0], s)
        return torch.minimum((u * n).long(), n.long() - 1)

    def forward(
        self,
        frames: torch.Tensor,
        num_frames: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        idx = self._sample(num_frames, generator)  # [B, S]
        picked = torch.gather(frames, 1, idx.unsqueeze(-1).expand(-1, -1, frames.shape[-1]))
        b, s, d = picked.shape
        h = self.input_bn(picked.reshape(b * s, d))
        h = F.relu6(self.cluster_bn(self.cluster(h)))
        h = h.view(b, s, -1).max(dim=1).values
        return F.relu6(self.hidden_bn(self.hidden(h)))


class _Lstm(nn.Module):
    """Stacked LSTM over the valid frames; returns the last layer's final hidden state."""

    def __init__(self, in_dim: int, cells: int, layers: int):
        super().__init__()
        self.lstm = nn.LSTM(in_dim, cells, num_layers=layers, batch_first=True)

    def forward(
        self,
        frames: torch.Tensor,
        num_frames: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        packed = nn.utils.rnn.pack_padded_sequence(
            frames, num_frames.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False
        )
        _, (h, _) = self.lstm(packed)
        return h[-1]


class _FrameModel(nn.Module):
    """Frame encoder followed by a video-level classifier body."""

    def __init__(self, encoder: nn.Module, body: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.body = body

    def forward(self, frames: torch.Tensor, num_frames: torch.Tensor) -> torch.Tensor:
        return self.body(self.encoder(frames, num_frames))

    def loss(
        self,
        frames: torch.Tensor,
        num_frames: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        return self.body.loss(self.encoder(frames, num_frames, generator), y)

    def l2_weights(self) -> list[torch.Tensor]:
        return self.body.l2_weights()


# --------------------------------------------------------------------------- the head wrapper
class Head(nn.Module):
    """A trained head: the model plus which classes it scores.

    Attributes:
        name: head name (one of HEADS or FRAME_HEADS).
        model: the torch module; ``model(x)`` returns probabilities over ``classes``.
        classes: long [C_seen] class ids the model scores (all classes if not only_seen).
        num_classes: C of the full label space.
        history: per-epoch dicts ``{"epoch", "loss", "seconds"}``.
        config: the HeadConfig it was trained with.
    """

    def __init__(self, name: str, model: nn.Module, classes: np.ndarray, num_classes: int,
                 config: HeadConfig):
        super().__init__()
        self.name = name
        self.model = model
        self.register_buffer("classes", torch.as_tensor(classes, dtype=torch.long))
        self.num_classes = num_classes
        self.config = config
        self.history: list[dict[str, float]] = []

    @property
    def is_frame_head(self) -> bool:
        return self.name in FRAME_HEADS


def frame_statistics(inputs: Any, top_k: int = 5, batch_size: int = 256,
                     max_frames: int | None = None) -> np.ndarray:
    """Per-video ``[mean; std; top-k]`` of every frame dimension over the valid frames.

    Args:
        inputs: FrameInput-like (``frames`` [N, F, D], ``num_frames`` [N]).
        top_k: largest values kept per dimension (5 in YouTube-8M's ``[mu; sigma; Top-5]``);
            a video with fewer than ``top_k`` frames repeats its mean in the missing slots.
        batch_size: videos processed at once.
        max_frames: only the first ``max_frames`` frames are used (None: all).

    Returns:
        float32 [N, (2 + top_k) * D], laid out as [mean | std | top-1 | ... | top-k].
    """
    frames, num_frames = _frame_arrays(inputs)
    f = frames.shape[1] if max_frames is None else min(max_frames, frames.shape[1])
    out = []
    for start in range(0, frames.shape[0], batch_size):
        x = torch.from_numpy(np.asarray(frames[start : start + batch_size, :f], dtype=np.float32))
        n = torch.from_numpy(np.minimum(num_frames[start : start + batch_size], f)).long()
        mask = _frame_mask(n, f).unsqueeze(-1)
        cnt = n.clamp(min=1).unsqueeze(-1).float()
        mean = (x * mask).sum(1) / cnt
        var = (((x - mean.unsqueeze(1)) * mask) ** 2).sum(1) / cnt
        k = min(top_k, f)
        top = x.masked_fill(~mask, float("-inf")).topk(k, dim=1).values  # [B, k, D]
        if k < top_k:
            missing = torch.full_like(top[:, :1], float("-inf")).expand(-1, top_k - k, -1)
            top = torch.cat([top, missing], 1)
        top = torch.where(torch.isinf(top), mean.unsqueeze(1).expand_as(top), top)
        out.append(torch.cat([mean, var.sqrt(), top.reshape(top.shape[0], -1)], 1).numpy())
    return np.concatenate(out, 0).astype(np.float32)


def _frame_arrays(inputs: Any) -> tuple[np.ndarray, np.ndarray]:
    frames = getattr(inputs, "frames", None)
    num_frames = getattr(inputs, "num_frames", None)
    if frames is None and isinstance(inputs, tuple) and len(inputs) == 2:
        frames, num_frames = inputs
    if frames is None or num_frames is None:
        raise ValueError(
            "frame heads need frame-level inputs: a FrameInput(frames [N, F, D], num_frames [N]) "
            "or a VideoSet read with keep_frames=True (its .frames is None)"
        )
    frames = np.asarray(frames)
    num_frames = np.asarray(num_frames).astype(np.int64)
    if frames.ndim != 3 or num_frames.shape != (frames.shape[0],):
        raise ValueError(
            "frames must be [N, F, D] and num_frames [N]; "
            f"got {frames.shape} and {num_frames.shape}"
        )
    return frames, num_frames


def _labels_csr(y: Any, n: int) -> sp.csr_matrix:
    y = sp.csr_matrix(y, dtype=np.float32) if not sp.issparse(y) else y.tocsr().astype(np.float32)
    if y.shape[0] != n:
        raise ValueError(f"labels have {y.shape[0]} rows but the inputs have {n}")
    y.data = (y.data > 0).astype(np.float32)
    return y


def _build_model(name: str, in_dim: int, prior: np.ndarray, cfg: HeadConfig) -> nn.Module:
    c = prior.size
    if name == "logistic":
        return _Linear(in_dim, c, prior, "logistic", cfg.hinge_margin)
    if name == "hinge":
        return _Linear(in_dim, c, prior, "hinge", cfg.hinge_margin)
    if name == "moe":
        return _Moe(in_dim, c, cfg.num_mixtures, prior)
    if name == "logistic_average":
        body = _Linear(in_dim, c, prior, "logistic", cfg.hinge_margin)
        return _FrameModel(_FrameAverage(), body)
    if name == "dbof":
        enc = _Dbof(in_dim, cfg.dbof_cluster_size, cfg.dbof_hidden_size, cfg.sample_frames)
        return _FrameModel(enc, _Moe(cfg.dbof_hidden_size, c, cfg.num_mixtures, prior))
    if name == "lstm":
        enc = _Lstm(in_dim, cfg.lstm_cells, cfg.lstm_layers)
        return _FrameModel(enc, _Moe(cfg.lstm_cells, c, cfg.num_mixtures, prior))
    raise ValueError(f"unknown head {name!r}; expected one of {HEADS + FRAME_HEADS}")


class _Inputs:
    """Uniform minibatch access to video-level [N, D] or frame-level inputs."""

    def __init__(self, name: str, x: Any, cfg: HeadConfig):
        self.frame = name in ("logistic_average", "dbof", "lstm")
        if name == "moe_mu_sigma_top5":
            x = frame_statistics(x, max_frames=cfg.max_frames)
        if self.frame:
            self.frames, self.num_frames = _frame_arrays(x)
            self.frames = self.frames[:, : cfg.max_frames]
            self.num_frames = np.clip(self.num_frames, 1, self.frames.shape[1])
            self.n, self.dim = self.frames.shape[0], self.frames.shape[2]
        else:
            if hasattr(x, "features") and not isinstance(x, np.ndarray):
                raise ValueError(
                    "pass a feature matrix (e.g. videoset.features()), not a VideoSet"
                )
            if isinstance(x, np.memmap):  # a feature store: minibatch rows are read from disk
                if x.ndim != 2:
                    raise ValueError(f"video-level heads need X of shape [N, D], got {x.shape}")
                self.x = x
                self.n, self.dim = x.shape
                return
            arr = np.asarray(x, dtype=np.float32)
            if arr.ndim != 2:
                raise ValueError(f"video-level heads need X of shape [N, D], got {arr.shape}")
            self.x = torch.from_numpy(np.ascontiguousarray(arr))
            self.n, self.dim = arr.shape

    def batch(self, idx: np.ndarray, device: str) -> tuple[torch.Tensor, ...]:
        if self.frame:
            sel = np.sort(idx)  # contiguous-ish reads from (possibly memory-mapped) frames
            order = np.argsort(np.argsort(idx))
            fr = np.asarray(self.frames[sel], dtype=np.float32)[order]
            return (torch.from_numpy(fr).to(device),
                    torch.from_numpy(self.num_frames[idx]).to(device))
        if isinstance(self.x, np.ndarray):
            return (gather_rows(self.x, idx, device),)
        return (self.x[torch.from_numpy(idx)].to(device),)


# --------------------------------------------------------------------------- public API
def fit_head(
    name: str,
    X_train: Any,
    Y_train: Any,
    config: HeadConfig = HeadConfig(),
    progress: bool = False,
    on_epoch_end: Callable[[int, Head], None] | None = None,
) -> Head:
    """Train a head on frozen features with minibatch Adam (AdamW when weight_decay > 0).

    Args:
        name: one of HEADS (X_train float [N, D]) or FRAME_HEADS (X_train a FrameInput-like).
        X_train: inputs for N training videos.
        Y_train: 0/1 labels [N, C], scipy sparse (preferred) or dense; dense label minibatches
            are built on the fly.
        config: HeadConfig.
        progress: show a tqdm bar over epochs.
        on_epoch_end: optional callback ``f(epoch, head)`` after every epoch (head in eval mode
            during the call), e.g. to track a validation metric.

    Returns:
        The trained Head (eval mode, on the config's device).
    """
    if name not in HEADS + FRAME_HEADS:
        raise ValueError(f"unknown head {name!r}; expected one of {HEADS + FRAME_HEADS}")
    device = resolve_device(config.device)
    inputs = _Inputs(name, X_train, config)
    y = _labels_csr(Y_train, inputs.n)
    num_classes = y.shape[1]
    positives = np.asarray(y.sum(axis=0)).ravel()
    classes = np.flatnonzero(positives > 0) if config.only_seen_classes else np.arange(num_classes)
    if classes.size == 0:
        raise ValueError("Y_train has no positive label: nothing to learn")
    y = y[:, classes].tocsr()
    prior = positives[classes] / inputs.n
    body_name = "moe" if name == "moe_mu_sigma_top5" else name

    # fork_rng keeps the caller's global torch RNG untouched; the seed fixes the initialisation.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        model = _build_model(body_name, inputs.dim, prior, config)
    if resolve_precision(config.precision, device) == "bf16":
        use_bf16_products(model)
    head = Head(name, model, classes, num_classes, config).to(device)
    # fused: one kernel per parameter for the whole Adam update instead of ~8 elementwise passes
    # (the update of a 1152 x 2777 weight cost ~25% of a logistic fit on CPU; same arithmetic).
    fused = device in ("cpu", "cuda")
    if config.weight_decay > 0:
        opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay,
                                fused=fused)
    else:
        opt = torch.optim.Adam(model.parameters(), lr=config.lr, fused=fused)
    l2_weights = model.l2_weights()
    rng = np.random.default_rng(config.seed)
    gen = torch.Generator(device=device).manual_seed(config.seed)

    from tqdm.auto import tqdm

    for epoch in tqdm(range(config.epochs_for(name)), desc=f"fit {name}", disable=not progress):
        head.train()
        t0 = time.perf_counter()
        perm = rng.permutation(inputs.n)
        total, seen = 0.0, 0
        for start in range(0, inputs.n, config.batch_size):
            idx = perm[start : start + config.batch_size]
            if name == "dbof" and idx.size < 2:
                continue  # batch norm needs >= 2 rows
            xb = inputs.batch(idx, device)
            yb = torch.from_numpy(y[idx].toarray()).to(device)
            if inputs.frame:
                loss = model.loss(*xb, yb, generator=gen)
            else:
                loss = model.loss(xb[0], yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            if config.l2_penalty > 0:
                # The gradient of 0.5 * l2 * sum(w^2) is l2 * w: added in place rather than built
                # through autograd (a square, a sum and their backward over every weight per
                # step). The recorded loss is the data term.
                with torch.no_grad():
                    for w in l2_weights:
                        if w.grad is not None:
                            w.grad.add_(w, alpha=config.l2_penalty)
            opt.step()
            total += float(loss.detach()) * idx.size
            seen += idx.size
        head.eval()
        head.history.append(
            {"epoch": epoch + 1, "loss": total / max(seen, 1), "seconds": time.perf_counter() - t0}
        )
        if on_epoch_end is not None:
            on_epoch_end(epoch + 1, head)
    head.eval()
    return head


@torch.no_grad()
def predict(head: Head, X: Any, batch_size: int = 2048) -> np.ndarray:
    """Scores of a trained head.

    Args:
        head: from :func:`fit_head`.
        X: inputs like the training ones (float [N, D], or frame-level for frame heads).
        batch_size: rows scored at once.

    Returns:
        float32 [N, C] probabilities over the full label space; classes the head does not model
        (no positive in training) score 0.
    """
    was_training = head.training
    head.eval()
    device = head.classes.device.type
    inputs = _Inputs(head.name, X, head.config)
    classes = head.classes.cpu().numpy()
    out = np.zeros((inputs.n, head.num_classes), dtype=np.float32)
    for start in range(0, inputs.n, batch_size):
        idx = np.arange(start, min(start + batch_size, inputs.n))
        xb = inputs.batch(idx, device)
        out[start : start + idx.size, classes] = head.model(*xb).float().cpu().numpy()
    head.train(was_training)
    return out


def evaluate_head(
    name: str,
    X_train: Any,
    Y_train: Any,
    X_test: Any,
    Y_test: Any,
    config: HeadConfig = HeadConfig(),
    progress: bool = False,
) -> dict[str, Any]:
    """Fit a head on the training videos and score it on the test videos.

    Args:
        name: one of HEADS or FRAME_HEADS.
        X_train, Y_train: training inputs and 0/1 labels [N_train, C].
        X_test, Y_test: test inputs and 0/1 labels [N_test, C].
        config: HeadConfig.
        progress: tqdm bar while fitting.

    Returns:
        :func:`vidsage_core.metrics.all_metrics` on the test set plus ``head`` (name),
        ``num_train``, ``num_test`` and ``fit_seconds``.
    """
    t0 = time.perf_counter()
    head = fit_head(name, X_train, Y_train, config, progress=progress)
    fit_seconds = time.perf_counter() - t0
    scores = predict(head, X_test)
    y_test = _labels_csr(Y_test, scores.shape[0])
    if y_test.shape[1] != scores.shape[1]:
        raise ValueError(
            f"Y_test has {y_test.shape[1]} classes but Y_train had {scores.shape[1]}"
        )
    result: dict[str, Any] = dict(all_metrics(scores, y_test))
    result.update(
        head=name,
        num_train=_num_videos(X_train, name),
        num_test=int(scores.shape[0]),
        fit_seconds=fit_seconds,
    )
    return result


def _num_videos(x: Any, name: str) -> int:
    if name in FRAME_HEADS:
        return int(_frame_arrays(x)[0].shape[0])
    return int(np.asarray(x).shape[0])
