"""Conditions of image-level sampling: what a batch is conditioned on, and the sampling plan.

"Taming Transformers" (Esser et al., CVPR 2021, §3.2): the condition is tokenised by the cond
stage and prepended to the image tokens: an SOS token for unconditional models, class ids,
layout token lists, or the codes of a spatial map (segmentation, depth, an image, FacesHQ
coordinates) on a grid. The model prepares its own condition (`prepare_condition`); this module
holds the result per batch and plans the grid: the training window (cached token sampler) or a
larger grid (sliding window, §3.2), checked against the transformer's context.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from taming.cond.stages import coordinate_map
from taming.config import ConfigError
from taming.pipeline.errors import SampleError

__all__ = ["Condition", "Plan", "coordinate_map", "encode_condition", "plan_grid"]


@dataclass
class Condition:
    """The tokens `n` samples are conditioned on."""

    prefix: Tensor | None  # (1 or n, Lp) tokens before the image
    grid: Tensor | None  # (1 or n, hc, wc) spatial condition codes

    def rows(self, start: int, b: int) -> Condition:
        """The condition of samples `[start, start + b)`."""

        def take(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            return t.expand(b, *t.shape[1:]) if t.shape[0] == 1 else t[start : start + b]

        return Condition(take(self.prefix), take(self.grid))


@dataclass(frozen=True)
class Plan:
    """Latent grid and window of a request; `sliding` when the grid exceeds the window."""

    grid: tuple[int, int]
    window: tuple[int, int]

    @property
    def sliding(self) -> bool:
        return self.grid != self.window


def _as_sample_error(e: ConfigError) -> SampleError:
    return e if isinstance(e, SampleError) else SampleError(str(e))


def encode_condition(
    model: Any, cond: Any, n: int, size: tuple[int, int] | None, window: tuple[int, int] | None
) -> Condition:
    """The model's prepared condition of `n` samples (`size`: pixels; default the window)."""
    if size is None and cond is None:
        f = model.first_stage_factor
        wh, ww = window if window is not None else model.training_window
        size = (wh * f, ww * f)
    try:
        prefix, grid = model.prepare_condition(cond, n, size)
    except ConfigError as e:
        raise _as_sample_error(e) from None
    return Condition(prefix, grid)


def plan_grid(
    model: Any, cond: Condition, size: tuple[int, int] | None, window: tuple[int, int] | None
) -> Plan:
    """The grid to sample (from `size`, else the condition's grid, else the window) and its
    checks: at least the window, context within the transformer's, what slides."""
    try:
        window = tuple(window) if window is not None else model.training_window
        if size is not None:
            grid = model.latent_grid(size)
        elif cond.grid is not None:
            grid = tuple(cond.grid.shape[-2:])
        else:
            grid = window
    except ConfigError as e:
        raise _as_sample_error(e) from None
    n_prefix = cond.prefix.shape[1] if cond.prefix is not None else 0
    if grid == window:
        n_grid = grid[0] * grid[1] if cond.grid is not None else 0
        _check_context(model, n_prefix + n_grid + grid[0] * grid[1] - 1, grid)
        return Plan(grid, window)
    if grid[0] < window[0] or grid[1] < window[1]:
        f = model.first_stage_factor
        raise SampleError(
            f"size {grid[0] * f}x{grid[1] * f} is smaller than the training window "
            f"{window[0] * f}x{window[1] * f} in one direction; sample at least the window "
            "size (larger sizes use a sliding window)"
        )
    if model.condition_kind == "tokens":
        raise SampleError(
            "layout-conditioned models sample only at their training size (the layout would "
            "have to be rebuilt for every window)"
        )
    if cond.grid is not None and tuple(cond.grid.shape[-2:]) != grid:
        raise SampleError(
            f"the condition's code grid {tuple(cond.grid.shape[-2:])} differs from the "
            f"image's {grid}: resize the condition to the sample size"
        )
    if not model.raster_order:
        raise SampleError(
            "sliding-window sampling works on raster-order tokens; this model's permuter "
            "is not the identity"
        )
    n_grid = window[0] * window[1] if cond.grid is not None else 0
    _check_context(model, n_prefix + n_grid + window[0] * window[1] - 1, window)
    return Plan(grid, window)


def _check_context(model: Any, needed: int, grid: tuple[int, int]) -> None:
    if needed > model.context_size:
        raise SampleError(
            f"the condition and a {grid[0]}x{grid[1]} code grid need {needed} tokens of "
            f"context, more than the transformer's block_size={model.context_size}"
        )


def check_eval(model: Any) -> None:
    """Sampling needs the model in eval mode."""
    if model.training:
        raise SampleError("sampling needs the model in eval mode (call model.eval())")


def null_check(model: Any, cfg_scale: float) -> None:
    """Guidance needs a conditional model (checked before any work)."""
    if cfg_scale != 1.0 and model.condition_kind == "none":
        raise SampleError("--cfg-scale needs a conditional model; this one is unconditional")


def generator_for(device: torch.device, seed: int | None) -> torch.Generator | None:
    """A generator on `device` seeded with `seed` (None: torch's global one)."""
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))
