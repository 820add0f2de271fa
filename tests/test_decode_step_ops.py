"""The decode step's small-tensor ops: exact GELU by ATen's kernel, and the w8a8 fast path."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from taming.transformer import cpu_matmul
from taming.transformer.block import step_gelu
from taming.transformer.cpu_matmul import quantize_int8


def _gelu_float64(x: torch.Tensor, approximate: str) -> torch.Tensor:
    """The closed forms: `x Phi(x)` with `Phi` from `math.erf`, or the tanh approximation."""
    xs = x.double().flatten().tolist()
    if approximate == "none":
        ys = [v * 0.5 * (1.0 + math.erf(v / math.sqrt(2.0))) for v in xs]
    else:
        c = math.sqrt(2 / math.pi)
        ys = [0.5 * v * (1.0 + math.tanh(c * (v + 0.044715 * v**3))) for v in xs]
    return torch.tensor(ys, dtype=torch.float64).view(x.shape)


@pytest.mark.parametrize("approximate", ["none", "tanh"])
@pytest.mark.parametrize("shape", [(1, 16), (1, 2048), (8, 2048), (3, 5, 7)])
def test_step_gelu_is_gelu_to_float32_rounding(approximate, shape):
    x = torch.randn(*shape) * 3
    ref = _gelu_float64(x, approximate)
    got = step_gelu(x, approximate).double()
    assert got.dtype == torch.float64 and got.shape == x.shape
    torch.testing.assert_close(got, ref, atol=1e-6, rtol=1e-6)


def test_step_gelu_leaves_onednn_as_it_was():
    assert torch.backends.mkldnn.enabled
    step_gelu(torch.randn(1, 8))
    assert torch.backends.mkldnn.enabled
    with pytest.raises(TypeError):
        step_gelu(torch.randn(1, 8), approximate=None)  # fails inside the switched-off window
    assert torch.backends.mkldnn.enabled
    with torch.backends.mkldnn.flags(enabled=False):  # a caller's own setting is kept
        step_gelu(torch.randn(1, 8))
        assert not torch.backends.mkldnn.enabled
    assert torch.backends.mkldnn.enabled


def test_step_gelu_uses_atens_kernel_while_onednn_is_off(monkeypatch):
    """The call runs with oneDNN off (where its per-call set-up is the cost), then turns it on."""
    seen, real_gelu = [], F.gelu

    def gelu(h, approximate="none"):
        seen.append(torch.backends.mkldnn.enabled)
        return real_gelu(h, approximate=approximate)

    monkeypatch.setattr("taming.transformer.block.F.gelu", gelu)
    step_gelu(torch.randn(1, 8))
    assert seen == [False] and torch.backends.mkldnn.enabled


@pytest.mark.parametrize("layout", ["contiguous", "strided", "bf16"])
def test_w8a8_linear_takes_any_input_layout(layout):
    """The w8a8 product of a contiguous float32 input (the decode step's, no conversions), a
    strided one and a bf16 one: each the float64 product of the rounded operands, in the input's
    dtype."""
    w, b = torch.randn(32, 64), torch.randn(32)
    lin = cpu_matmul.DecodeLinear([w], [b], "w8a8")
    x = torch.randn(64, 3).t() if layout == "strided" else torch.randn(3, 64)  # (3, 64)
    if layout == "bf16":
        x = x.to(torch.bfloat16)
    wq, scale = quantize_int8(w)
    ref = (
        cpu_matmul.fake_quant_activations(x.float()).double()
        @ (wq.double() * scale.double()[:, None]).t()
        + b.double()
    )
    y = lin(x)
    assert y.dtype == x.dtype and y.shape == (3, 32)
    tol = 1e-4 if layout != "bf16" else 1e-2
    torch.testing.assert_close(y.double(), ref, atol=tol * ref.abs().max().item(), rtol=0)
