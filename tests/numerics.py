"""Tolerances for fp32 results that are compared with a float64 computation.

CPUs of this project's class sum in different orders (AVX2 or AVX-512 kernels), so an fp32
result is only defined up to its rounding errors; a test must not demand another machine's
last bits. `fp32_tolerance` measures how strongly a quantity reacts to rounding-sized changes
of everything it is computed from: it recomputes the quantity in float64 with every parameter
and input scaled by `1 + 2**-24 * N(0, 1)` (one fp32 rounding each) and takes the largest
change. An fp32 computation behaves like an exact one on inputs perturbed by about
`sqrt(K)` roundings for reductions of length `K` (backward error analysis of dot products);
with `K` up to ~1000 here, `ulps=32` covers it. Ill-conditioned quantities (a ratio of
gradient norms, say) get a correspondingly wider tolerance; well-conditioned ones stay tight.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import nn

FP32_EPS = 2.0**-24


def _perturbed(t: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    noise = torch.randn(t.shape, generator=gen, dtype=torch.float64)
    return t * (1 + FP32_EPS * noise)


def fp32_tolerance(
    fn: Callable[..., Sequence[float]],
    modules: Sequence[nn.Module],
    inputs: Sequence[torch.Tensor],
    trials: int = 4,
    ulps: float = 32.0,
    seed: int = 0,
) -> tuple[float, float]:
    """`(values in float64, tolerances of an fp32 computation of them)`, one per quantity.

    Args:
        fn: `fn(*modules, *inputs) -> sequence of floats`, the quantities (may use autograd).
        modules: float32 modules; float64 copies are used, the originals are not changed.
        inputs: float32 tensors, used in float64.
        trials: perturbed recomputations.
        ulps: safety factor over the largest single-rounding change (see the module doc).
    """
    mods64 = [copy.deepcopy(m).double() for m in modules]
    ins64 = [x.double() for x in inputs]
    ref = _values(fn(*mods64, *ins64))
    gen = torch.Generator().manual_seed(seed)
    worst = torch.zeros_like(ref)
    for _ in range(trials):
        mods = [copy.deepcopy(m) for m in mods64]
        with torch.no_grad():
            for m in mods:
                for p in m.parameters():
                    p.copy_(_perturbed(p, gen))
        value = _values(fn(*mods, *[_perturbed(x, gen) for x in ins64]))
        worst = torch.maximum(worst, (value - ref).abs())
    return ref, ulps * torch.maximum(worst, FP32_EPS * ref.abs())


def _values(values: Sequence[float | torch.Tensor]) -> torch.Tensor:
    return torch.tensor([float(torch.as_tensor(v).detach()) for v in values], dtype=torch.float64)
