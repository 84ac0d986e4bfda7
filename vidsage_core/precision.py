"""bfloat16 matrix products on CPUs that have them: the heads' and fine-tuning's dense layers.

On a CPU with native bf16 instructions (AVX512-BF16 or AMX), oneDNN multiplies bf16 matrices
2.5-3.5x faster than fp32 ones (measured on the 2-core AMD EPYC the artifact's 20-minute budget
is measured on, one thread: ``[11181, 1152] @ [1152, 128]`` 61 -> 17 ms; ``[512, 1280] @
[1280, 2800]`` 47 -> 19 ms). ``torch.autocast`` on CPU would also run every op that follows a
product in bf16 (sigmoid, softmax, log, and the sparse neighbour sums), so instead only the
products change: :class:`Bf16Linear` rounds its input and weight to bf16, multiplies, and
returns fp32 (oneDNN accumulates in fp32; the result is rounded to bf16 once). The weights,
their gradients as the optimiser sees them, the optimiser state, biases, losses and every other
op stay fp32.

Measured on the validation bucket (train on md5 buckets 2-4, 8,383 videos; score the 2,798 of
bucket 1; the test bucket not looked at; one thread, idle machine), fp32 -> bf16 products:

==================================================  ==================  ============
what                                                val GAP             seconds
==================================================  ==================  ============
logistic head on raw x (lr 6e-2, 3 epochs)          0.63399 -> 0.63400  6.5 -> 3.1
MoE head (2 experts) on raw x (lr 6e-2, 3 epochs)   0.64139 -> 0.64172  33.2 -> 20.5
LiteVidSage fine-tuning (FinetuneConfig(), seed 0)  0.64174 -> 0.64174  31.6 -> 21.3
==================================================  ==================  ============

so ``RunConfig.precision = "auto"`` uses them wherever the CPU has native bf16. A CPU without it
would emulate bf16 products, slower than fp32, so "auto" keeps fp32 there (and on CUDA, where
training has its own autocast, ``TrainConfig.amp``). The unsupervised pre-training keeps fp32.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

PRECISIONS = ("fp32", "bf16", "auto")

__all__ = ["PRECISIONS", "Bf16Linear", "check_precision", "cpu_has_native_bf16", "resolve_precision",
           "use_bf16_products"]


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bf16 matrices natively (AVX512-BF16 or AMX tiles)."""
    cpu = getattr(torch, "cpu", None)
    checks = (getattr(cpu, "_is_avx512_bf16_supported", None), getattr(cpu, "_is_amx_tile_supported", None))
    return any(check is not None and bool(check()) for check in checks)


def check_precision(precision: str, what: str = "precision") -> None:
    """Raise ValueError naming ``what`` (e.g. ``"RunConfig.precision"``) unless ``precision`` is one of PRECISIONS."""
    if precision not in PRECISIONS:
        raise ValueError(f"{what}={precision!r}: expected one of {PRECISIONS}")


def resolve_precision(precision: str, device: str) -> str:
    """``"fp32"`` or ``"bf16"``: what ``precision`` means on ``device`` (a resolved device name).

    ``"auto"`` is bf16 on a CPU with native bf16 products, fp32 elsewhere; ``"bf16"`` is bf16
    wherever it is asked for.
    """
    check_precision(precision)
    if precision == "auto":
        return "bf16" if device == "cpu" and cpu_has_native_bf16() else "fp32"
    return precision


class Bf16Linear(nn.Linear):
    """``nn.Linear`` whose product runs in bf16; weights, bias and result stay fp32.

    ``y = float(bf16(x) @ bf16(W)^T) + b``. Autograd rounds the incoming gradient to bf16 for
    the two backward products (input and weight gradients) and hands the optimiser an fp32
    weight gradient.
    """

    def forward(self, x: Tensor) -> Tensor:
        out = F.linear(x.to(torch.bfloat16), self.weight.to(torch.bfloat16)).to(x.dtype)
        return out if self.bias is None else out + self.bias


def use_bf16_products(module: nn.Module) -> nn.Module:
    """Turn every ``nn.Linear`` inside ``module`` (or ``module`` itself) into a Bf16Linear, in place.

    The same Parameter objects are kept, so ``state_dict`` keys and values, an optimiser built
    before or after, and saved checkpoints are unchanged; only the forward arithmetic differs.
    Other layers (PyG's own ``Linear``, LSTMs, batch norm) are left as they are.
    """
    for m in module.modules():
        if type(m) is nn.Linear:
            # Bf16Linear adds no state, only a forward: re-classing the instance keeps its
            # Parameters and hooks (torch.nn.utils.parametrize re-classes modules the same way).
            m.__class__ = Bf16Linear
    return module
