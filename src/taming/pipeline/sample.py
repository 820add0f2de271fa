"""Image-level samplers: `n` images from a `Net2NetTransformer`, in batches.

Esser et al. (CVPR 2021): the transformer draws first-stage codes after a condition, the first
stage decodes them. A latent grid of the training window is sampled with the KV cache; a larger
one (e.g. 512x1024 px from a 256 px model) with the sliding window of §3.2
(`taming.sampling.sample_sliding_window`), for prefix conditions (SOS/class) and spatial ones
(the condition's codes on the same grid). Top-k / top-p / temperature, classifier-free guidance
(`cfg_scale`, models trained with `cond_drop_prob > 0`) and a seedable generator.

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

from taming.pipeline.conditions import (
    _Condition,
    _default_condition,
    _encode_condition,
    _null_prefix,
)
from taming.pipeline.errors import SampleError
from taming.pipeline.geometry import (
    _check_identity_permuter,
    _is_layout,
    first_stage_factor,
    latent_grid,
    training_window,
)


def _generator(device: torch.device, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    return torch.Generator(device=device).manual_seed(int(seed))


def _decode(model: Any, tokens_seq: Tensor, grid: tuple[int, int]) -> Tensor:
    """Sequence-order tokens `(B, h*w)` -> images `(B, 3, H, W)` in [-1, 1] (CPU float)."""
    h, w = grid
    n_embed = int(model.first_stage_model.n_embed)
    top = int(tokens_seq.max()) if tokens_seq.numel() else 0
    if top >= n_embed:
        raise SampleError(
            f"sampled token {top} is not a code of the first stage (n_embed={n_embed}, "
            f"transformer vocab_size={model.transformer.vocab_size}): check the config"
        )
    zshape = (tokens_seq.shape[0], int(model.first_stage_model.embed_dim), h, w)
    with torch.no_grad():
        x = model.decode_to_img(tokens_seq, zshape)
    return x.clamp(-1.0, 1.0).float().cpu()


def _raster(model: Any, tokens_seq: Tensor, grid: tuple[int, int]) -> Tensor:
    return model.permuter(tokens_seq, reverse=True).reshape(-1, *grid).cpu()


def _plan(
    model: Any, cond: _Condition, size: tuple[int, int] | None, window: tuple[int, int] | None
) -> tuple[tuple[int, int], tuple[int, int], bool]:
    """`(latent grid, window, sliding)` for a request."""
    window = tuple(window) if window is not None else training_window(model)
    if size is not None:
        grid = latent_grid(model, size)
    elif cond.grid is not None:
        grid = tuple(cond.grid.shape[-2:])
    else:
        grid = window
    if grid == window:
        _check_context(model, cond.length + grid[0] * grid[1] - 1, grid)
        return grid, window, False
    if grid[0] < window[0] or grid[1] < window[1]:
        f = first_stage_factor(model)
        raise SampleError(
            f"size {grid[0] * f}x{grid[1] * f} is smaller than the training window "
            f"{window[0] * f}x{window[1] * f} in one direction; sample at least the window "
            "size (larger sizes use a sliding window)"
        )
    if _is_layout(model):
        raise SampleError(
            "layout-conditioned models sample only at their training size (the layout would "
            "have to be rebuilt for every window)"
        )
    if cond.grid is not None and tuple(cond.grid.shape[-2:]) != grid:
        raise SampleError(
            f"the condition's code grid {tuple(cond.grid.shape[-2:])} differs from the "
            f"image's {grid}: resize the condition to the sample size"
        )
    _check_identity_permuter(model, "sliding-window sampling")
    n_prefix = cond.prefix.shape[1] if cond.prefix is not None else 0
    n_grid = window[0] * window[1] if cond.grid is not None else 0
    _check_context(model, n_prefix + n_grid + window[0] * window[1] - 1, window)
    return grid, window, True


def _check_context(model: Any, needed: int, grid: tuple[int, int]) -> None:
    block_size = int(model.transformer.block_size)
    if needed > block_size:
        raise SampleError(
            f"the condition and a {grid[0]}x{grid[1]} code grid need {needed} tokens of "
            f"context, more than the transformer's block_size={block_size}"
        )


def iter_samples(
    model: Any,
    n: int,
    cond: Any = None,
    *,
    size: tuple[int, int] | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float = 1.0,
    cfg_scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    use_cache: bool = True,
    window: tuple[int, int] | None = None,
    progress: bool = False,
) -> Iterator[tuple[Tensor, Tensor]]:
    """Yield `(images (b, 3, H, W), tokens (b, h, w))` batches of `n` samples in total.

    Arguments as `sample_images`.
    """
    if n < 1:
        raise SampleError(f"the number of samples must be >= 1, got {n}")
    if batch_size < 1:
        raise SampleError(f"batch_size must be >= 1, got {batch_size}")
    if model.transformer.training:
        raise SampleError("sampling needs the model in eval mode (call model.eval())")
    cond = _default_condition(model, cond, size, window)
    c = _encode_condition(model, cond, n)
    grid, window, sliding = _plan(model, c, size, window)
    null = _null_prefix(model, c, cfg_scale)
    h, w = grid
    top_k = top_k or None
    n_batches = math.ceil(n / batch_size)
    for start in range(0, n, batch_size):
        b = min(batch_size, n - start)
        cb = c.rows(start, b)
        if sliding:
            tokens = _sample_sliding(
                model,
                cb,
                grid,
                window,
                None,
                None,
                top_k=top_k,
                top_p=top_p,
                temperature=temperature,
                generator=generator,
                use_cache=use_cache,
                progress=progress and n_batches == 1,
                cfg_scale=cfg_scale,
                null=null,
            )
        else:
            prefix = cb.tokens()
            tokens = model.sample(
                prefix[:, :0],
                prefix,
                h * w,
                temperature=temperature,
                sample=True,
                top_k=top_k,
                top_p=top_p,
                use_cache=use_cache,
                generator=generator,
                cfg_scale=cfg_scale,
                progress=progress and n_batches == 1,
            )  # (b, h*w), sequence order
        yield _decode(model, tokens, grid), _raster(model, tokens, grid)


def _sample_sliding(
    model: Any,
    c: _Condition,
    grid: tuple[int, int],
    window: tuple[int, int],
    tokens: Tensor | None,
    known: Tensor | None,
    *,
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    generator: torch.Generator | None,
    use_cache: bool,
    progress: bool = False,
    cfg_scale: float = 1.0,
    null: Tensor | None = None,
) -> Tensor:
    from taming.sampling.sliding import sample_sliding_window

    null_cond = None
    if null is not None:  # the null token in place of the prefix and the cond-grid window
        n_ctx = (c.prefix.shape[1] if c.prefix is not None else 0) + (
            window[0] * window[1] if c.grid is not None else 0
        )
        null_cond = null[:, :1].expand(1, n_ctx)
    return sample_sliding_window(
        model.transformer,
        grid,
        cond=c.prefix,
        cond_grid=c.grid,
        window=window,
        tokens=tokens,
        known=known,
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        sample=True,
        generator=generator,
        use_cache=use_cache,
        progress=progress,
        cfg_scale=cfg_scale,
        null_cond=null_cond,
    )  # (B, h*w) raster order


def sample_images(
    model: Any,
    n: int,
    cond: Any = None,
    *,
    size: tuple[int, int] | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float = 1.0,
    cfg_scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    use_cache: bool = True,
    window: tuple[int, int] | None = None,
    progress: bool = False,
    return_tokens: bool = False,
) -> Tensor | tuple[Tensor, Tensor]:
    """Sample `n` images from a `Net2NetTransformer` (in eval mode).

    Args:
        model: the transformer model (`taming.load(run)`).
        n: number of images.
        cond: the condition: None (unconditional models), class ids (an int, or `n` ids) for
            class-conditional models, a `(1 or n, C, H, W)` map for spatial cond stages
            (one-hot segmentation, depth, an RGB image for `__is_first_stage__`; see
            `load_condition`), or `(1 or n, L)` tokens for layout models.
        size: image size `(H, W)`, multiples of `f` (default: the condition's size, else the
            training size). Grids larger than the training window use a sliding window.
        top_k: keep the `top_k` most likely tokens (None/0: all).
        top_p: nucleus threshold (None: off; applied with or without top-k).
        temperature: logit divisor.
        cfg_scale: classifier-free guidance scale (1: off; the model needs
            `cond_drop_prob > 0` in training).
        generator: random generator of the draws (on the model's device), for reproducibility.
        batch_size: images per batch.
        use_cache: KV-cached decoding (False: the original full recomputation).
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
            size=size,
            top_k=top_k,
            top_p=top_p,
            temperature=temperature,
            cfg_scale=cfg_scale,
            generator=generator,
            batch_size=batch_size,
            use_cache=use_cache,
            window=window,
            progress=False,
        ):
            images.append(x)
            tokens.append(t)
            bar.update(x.shape[0])
    out = torch.cat(images)
    return (out, torch.cat(tokens)) if return_tokens else out
