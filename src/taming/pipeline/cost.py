"""What a sampling request costs, said before it starts: tokens, decode memory, time.

Autoregressive sampling draws one token per step (Esser et al., CVPR 2021); an `H x W` image
from a factor-`f` first stage is `(H/f) * (W/f)` steps per batch, and a grid wider than the
training window is sampled with the sliding window, whose steps cost up to a full forward of
the window's context when it moves. Sizes past a limit are refused with the estimate (the
limits are options), instead of starting work that cannot finish.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import torch

from taming.pipeline.conditions import Plan
from taming.pipeline.errors import SampleError
from taming.sampling.config import SamplingConfig

logger = logging.getLogger(__name__)

__all__ = ["check_cost", "estimate_seconds"]

_GIB = 1024**3


def check_cost(
    model: Any, plan: Plan, batch: int, max_tokens: int, max_decode_gib: float
) -> tuple[int, float]:
    """`(tokens per image, decode GiB per batch)`; past a limit, a `SampleError` with both."""
    h, w = plan.grid
    tokens = h * w
    gib = model.decode_memory_bytes(plan.grid, batch) / _GIB
    f = model.first_stage_factor
    if tokens > max_tokens or gib > max_decode_gib:
        raise SampleError(
            f"{h * f}x{w * f} px is {tokens:,} tokens per image (limit {max_tokens:,}, "
            f"--max-tokens) and decoding a batch of {batch} needs about {gib:.1f} GiB "
            f"(limit {max_decode_gib:g}, --max-decode-gib); sample smaller or raise the limits"
        )
    return tokens, gib


@torch.no_grad()
def _timed(fn: Any) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def estimate_seconds(
    model: Any, plan: Plan, batch: int, steps: int, n_ctx: int, config: SamplingConfig
) -> float:
    """Seconds for `steps` draws of `batch` rows, from a few timed steps of the model itself.

    Cached steps on the window are timed directly (four of them); an uncached or sliding step
    is bounded by one full forward of the window's context, which is timed instead.
    """
    rows = batch * (2 if config.guided else 1)
    window_tokens = plan.window[0] * plan.window[1]
    device = model.device
    if config.use_cache and not plan.sliding:
        c = torch.zeros(rows, 1, dtype=torch.long, device=device)
        probe = 4
        t = _timed(lambda: model.sample(c[:, :0], c, probe, sample=False)) / probe
    else:
        length = min(n_ctx + window_tokens - 1, model.context_size)
        c = torch.zeros(rows, length, dtype=torch.long, device=device)
        t = _timed(lambda: model.sample(c[:, :0], c[:, :-1], 1, sample=False, use_cache=False))
    return t * steps
