"""Image-level samplers: `n` images from a `Net2NetTransformer`, in batches.

Esser et al. (CVPR 2021): the transformer draws first-stage codes after a condition, the first
stage decodes them. A latent grid of the training window is sampled with the KV cache; a larger
one (e.g. 512x1024 px from a 256 px model) with the sliding window of §3.2, for prefix
conditions (SOS/class) and spatial ones (the condition's codes on the same grid): both through
the model's one route, `Net2NetTransformer.sample_codes`. The decoding settings are one
`SamplingConfig` (top-k / top-p / temperature, classifier-free guidance for models trained with
`cond_drop_prob > 0`, the KV cache); a generator makes the draws reproducible.

Images are float tensors `(N, 3, H, W)` in [-1, 1] on the CPU; tokens are `(N, h, w)` code
grids in raster order.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from taming.config import ConfigError
from taming.pipeline.conditions import (
    check_eval,
    encode_condition,
    null_check,
    plan_grid,
)
from taming.pipeline.errors import SampleError
from taming.sampling.config import SamplingConfig, resolve_config
from taming.sampling.sample import StepCallback

__all__ = ["decode", "iter_samples", "sample_images", "sampling_config"]


def sampling_config(config: SamplingConfig | None, settings: dict[str, Any]) -> SamplingConfig:
    """`config` with keyword overrides; invalid values are `SampleError`s (one line)."""
    try:
        return resolve_config(config, settings)
    except ValueError as e:
        raise SampleError(str(e)) from None


def decode(model: Any, codes: Tensor) -> Tensor:
    """Raster codes `(B, h, w)` -> images `(B, 3, H, W)` in [-1, 1] (CPU float)."""
    try:
        x = model.decode_codes(codes)
    except ConfigError as e:
        raise SampleError(str(e)) from None
    return x.clamp(-1.0, 1.0).float().cpu()


def iter_samples(
    model: Any,
    n: int,
    cond: Any = None,
    config: SamplingConfig | None = None,
    *,
    size: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    window: tuple[int, int] | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
    **settings: Any,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield `(images (b, 3, H, W), tokens (b, h, w))` batches of `n` samples in total.

    Arguments as `sample_images`; `callback(step, probs (b, vocab))` after every draw.
    """
    config = sampling_config(config, settings)
    if n < 1:
        raise SampleError(f"the number of samples must be >= 1, got {n}")
    if batch_size < 1:
        raise SampleError(f"batch_size must be >= 1, got {batch_size}")
    check_eval(model)
    null_check(model, config.cfg_scale)
    c = encode_condition(model, cond, n, size, window)
    plan = plan_grid(model, c, size, window)
    n_batches = math.ceil(n / batch_size)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        cb = c.rows(start, b)
        codes = model.sample_codes(
            cb.prefix,
            cb.grid,
            plan.grid,
            config,
            window=plan.window,
            generator=generator,
            callback=callback,
            progress=progress and n_batches == 1,
        )  # (b, h, w) raster
        yield decode(model, codes), codes.cpu()


def sample_images(
    model: Any,
    n: int,
    cond: Any = None,
    config: SamplingConfig | None = None,
    *,
    size: tuple[int, int] | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    window: tuple[int, int] | None = None,
    progress: bool = False,
    return_tokens: bool = False,
    **settings: Any,
) -> Tensor | tuple[Tensor, Tensor]:
    """Sample `n` images from a `Net2NetTransformer` (in eval mode).

    Args:
        model: the transformer model (`taming.load(run)`).
        n: number of images.
        cond: the condition: None (unconditional models), class ids (an int, or `n` ids) for
            class-conditional models, a `(1 or n, C, H, W)` map for spatial cond stages
            (one-hot segmentation, depth, an RGB image for `__is_first_stage__`; see
            `load_condition`), or `(1 or n, L)` tokens for layout models.
        config: decoding settings, a `taming.sampling.SamplingConfig` (temperature, top_k,
            top_p, cfg_scale, use_cache); keyword `settings` override single fields
            (`sample_images(model, 8, top_k=100)`). Guidance needs `cond_drop_prob > 0` in
            training.
        size: image size `(H, W)`, multiples of `f` (default: the condition's size, else the
            training size). Grids larger than the training window use a sliding window.
        generator: random generator of the draws (on the model's device), for reproducibility.
        batch_size: images per batch.
        window: training latent grid `(h, w)` (default: first-stage `resolution / f`).
        progress: tqdm bar over the images.
        return_tokens: also return the token grids.

    Returns:
        Images `(n, 3, H, W)` in [-1, 1] (CPU), and with `return_tokens` the codes
        `(n, h, w)` (raster order).
    """
    images, tokens = [], []
    bar = tqdm(total=n, desc="sampling", unit="img", disable=not progress)
    with bar:
        for x, t in iter_samples(
            model,
            n,
            cond,
            config,
            size=size,
            generator=generator,
            batch_size=batch_size,
            window=window,
            progress=False,
            **settings,
        ):
            images.append(x)
            tokens.append(t)
            bar.update(x.shape[0])
    out = torch.cat(images)
    return (out, torch.cat(tokens)) if return_tokens else out
