"""bf16 matrix products (vidsage_core.precision) and where the heads, fine-tuning and run use them."""

import numpy as np
import pytest
import torch
from torch import nn
from torch_geometric.nn import Linear as PygLinear

from vidsage_core import pipeline, precision
from vidsage_core.evaluate import HeadConfig, fit_head, predict
from vidsage_core.finetune import FinetuneConfig
from vidsage_core.precision import Bf16Linear, resolve_precision, use_bf16_products


def _bf16(t: torch.Tensor) -> torch.Tensor:
    return t.to(torch.bfloat16).to(torch.float32)


def test_bf16_linear_is_the_product_of_the_rounded_operands_plus_the_fp32_bias():
    g = torch.Generator().manual_seed(0)
    x, w, b = torch.randn(64, 96, generator=g), torch.randn(40, 96, generator=g), torch.randn(40, generator=g)
    layer = nn.Linear(96, 40)
    with torch.no_grad():
        layer.weight.copy_(w)
        layer.bias.copy_(b)
    use_bf16_products(layer)
    out = layer(x)
    assert out.dtype == torch.float32
    # Reference: the exact product of the bf16-rounded operands (float64). The layer's product
    # is that, accumulated in fp32 and rounded once to bf16 (at most 2^-8 relative: half a bf16
    # step of its 8-bit significand), plus the fp32 bias.
    exact = (_bf16(x).double() @ _bf16(w).double().T)
    err = (out.double() - b.double() - exact).abs()
    assert (err <= 2 ** -8 * exact.abs() + 1e-5).all()
    # ... and it is not the fp32 product: the operands really were rounded.
    assert not torch.equal(out, x @ w.T + b)
    assert torch.allclose(out, x @ w.T + b, rtol=0.05, atol=0.1)


def test_use_bf16_products_keeps_parameters_and_swaps_only_torch_linears():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Sequential(nn.Linear(16, 4, bias=False)),
                          PygLinear(4, 3), nn.LSTM(3, 2))
    params = [id(p) for p in model.parameters()]
    state = {k: v.clone() for k, v in model.state_dict().items()}
    assert use_bf16_products(model) is model
    assert [type(m) for m in model.modules() if isinstance(m, nn.Linear)] == [Bf16Linear, Bf16Linear]
    assert type(model[3]) is PygLinear and type(model[4]) is nn.LSTM  # other layers untouched
    assert [id(p) for p in model.parameters()] == params
    assert model.state_dict().keys() == state.keys()
    for k, v in model.state_dict().items():
        assert torch.equal(v, state[k])


def test_bf16_gradients_reach_the_fp32_weights_close_to_the_fp32_ones():
    torch.manual_seed(0)
    x, y = torch.randn(128, 32), torch.randn(128, 8)
    ref = nn.Linear(32, 8)
    mixed = nn.Linear(32, 8)
    mixed.load_state_dict(ref.state_dict())
    use_bf16_products(mixed)
    for layer in (ref, mixed):
        ((layer(x) - y) ** 2).mean().backward()
    assert mixed.weight.grad.dtype == torch.float32 and mixed.weight.dtype == torch.float32
    rel = (mixed.weight.grad - ref.weight.grad).norm() / ref.weight.grad.norm()
    assert 0 < rel < 1e-2
    assert torch.allclose(mixed.bias.grad, ref.bias.grad, rtol=1e-2, atol=1e-4)


def test_resolve_precision(monkeypatch):
    assert resolve_precision("fp32", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"
    assert resolve_precision("auto", "cuda") == "fp32"  # CUDA training has its own autocast
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(precision, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"  # emulated bf16 would be slower than fp32
    with pytest.raises(ValueError, match="precision='half'"):
        resolve_precision("half", "cpu")
    with pytest.raises(ValueError, match="FinetuneConfig.precision='half'"):
        FinetuneConfig(precision="half")
    with pytest.raises(ValueError, match="RunConfig.precision='half'"):
        pipeline.run(pipeline.RunConfig(precision="half"))


@pytest.mark.parametrize("head", ["logistic", "moe"])
def test_a_bf16_head_is_deterministic_and_scores_like_the_fp32_one(head):
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(6, 48))
    labels = rng.integers(0, 6, size=600)
    x = (centres[labels] + 0.7 * rng.normal(size=(600, 48))).astype(np.float32)
    y = np.eye(6, dtype=np.float32)[labels]
    fits = {p: [fit_head(head, x[:400], y[:400], HeadConfig(epochs=4, precision=p, device="cpu"))
                for _ in range(2 if p == "bf16" else 1)] for p in ("fp32", "bf16")}
    assert type(fits["bf16"][0].model.experts if head == "moe" else fits["bf16"][0].model.fc) is Bf16Linear
    fp32, bf16, again = (predict(fits[p][i], x[400:]) for p, i in (("fp32", 0), ("bf16", 0), ("bf16", 1)))
    np.testing.assert_array_equal(bf16, again)
    assert np.abs(bf16 - fp32).max() < 0.05
    accuracy = {k: (v.argmax(1) == labels[400:]).mean() for k, v in {"fp32": fp32, "bf16": bf16}.items()}
    assert accuracy["bf16"] > 0.9 and abs(accuracy["bf16"] - accuracy["fp32"]) <= 0.01


def test_run_passes_its_precision_to_every_head():
    config = pipeline.RunConfig(precision="bf16")
    assert pipeline.head_config(config, "raw", "moe", seed=0, device="cpu").precision == "bf16"
    assert pipeline.head_config(pipeline.RunConfig(), "sgc", "logistic", 0, "cpu").precision == "auto"
