"""Sliding-window sampling of token grids larger than the transformer's training window.

Esser et al. (CVPR 2021, §3.2 and Fig. 3) synthesise megapixel images by sampling the latent
grid in raster order with a fixed attention window: the token at `(i, j)` is predicted from a
`wh x ww` crop of the canvas that contains it, placed so that the target sits at local position
`(wh // 2, ww // 2)` unless the crop would leave the grid (the original scripts:
`window_start = clamp(i - 8, 0, h - 16)` for 16x16 windows). The transformer sees

    seq = [prefix | conditioning-grid crop | canvas crop (raster)]

where `prefix` is a fixed conditioning sequence (SOS / class tokens) and the conditioning-grid
crop is the same window of a spatial conditioning grid (segmentation / depth codes of the same
`(h, w)`). The original runs one full forward of `seq[:, :-1]` per token and reads the output
at the target (`use_cache=False` does exactly that).

Cached rule (`use_cache=True`), exact because attention is causal: the logits of a target only
depend on the tokens of `seq` before it. While the window origin stays the same from one
target to the next, those tokens only grow (the previous target is appended), so the cache is
extended by the new tokens (one per step). When the origin moves, positions `[0, len(prefix))`
stay valid (the prefix does not move; only if `n_unmasked <= len(prefix)`) and everything after
is recomputed in one chunk up to the target. Only the last position's logits are computed. A
grid of the window's size is therefore sampled like a plain cached sequence, and a wider grid
pays one prefill per target whose window moved (interior columns), instead of a full forward
per token.

Classifier-free guidance (`cfg_scale != 1`) runs a second, unconditional group of rows in the
same batch: the same canvas crop after `null_cond` in place of `[prefix | conditioning-grid
crop]` (the model's null token everywhere, as in condition-dropout training). Both groups share
the window rule and the cache schedule; their logits are mixed as in `taming.sampling.sample`.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from tqdm import tqdm

from taming.sampling.config import SamplingConfig, resolve_config
from taming.sampling.sample import StepCallback, TokenSampler, null_rows
from taming.transformer.gpt import GPT

__all__ = ["sample_sliding_window", "window_start"]


def window_start(index: int, size: int, window: int) -> int:
    """First row (or column) of the window for a target at `index` along an axis of `size`.

    `clamp(index - window // 2, 0, size - window)`, which for even windows is the original
    rule (`local = index` if `index <= window/2`; `window - (size - index)` if
    `size - index < window/2`; else `window/2`).
    """
    return min(max(index - window // 2, 0), size - window)


def sample_sliding_window(
    gpt: GPT,
    shape: tuple[int, int],
    cond: Tensor | None = None,
    cond_grid: Tensor | None = None,
    window: tuple[int, int] = (16, 16),
    tokens: Tensor | None = None,
    known: Tensor | None = None,
    config: SamplingConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    progress: bool = False,
    null_cond: Tensor | None = None,
    **settings: Any,
) -> Tensor:
    """Sample an `(h, w)` token grid with a sliding `window`, in raster order.

    Args:
        gpt: The transformer (eval mode), trained on `window`-sized grids.
        shape: Latent grid `(h, w)`, at least the window in both directions.
        cond: Fixed conditioning prefix `(B, Lp)` (SOS / class tokens), or `None`.
        cond_grid: Spatial conditioning tokens `(B, h, w)` or `(B, h*w)`, cropped with the
            same window and placed between the prefix and the image crop, or `None`.
        window: Window `(wh, ww)` in tokens.
        tokens: Initial canvas `(B, h*w)` (raster); needed for completion.
        known: Boolean mask `(h*w,)` or `(B, h*w)` of canvas tokens to keep (completion).
        config: Decoding settings (`SamplingConfig`); `use_cache=False` runs the original
            full forward per token, `cfg_scale != 1` guidance.
        generator, callback, progress, **settings: As in `taming.sampling.sample_tokens`.
        null_cond: With guidance, the unconditional tokens `(Lc,)`, `(1, Lc)` or `(B, Lc)`
            that replace the prefix and the conditioning-grid crop (`Lc = Lp + wh*ww` with a
            grid, else `Lp`).

    Returns:
        Tokens `(B, h*w)` in raster order.
    """
    config = resolve_config(config, settings)
    (h, w), (wh, ww) = shape, window
    if h < wh or w < ww:
        raise ValueError(f"grid {shape} is smaller than the window {window}")
    given = [t for t in (cond, cond_grid, tokens) if t is not None]
    if not given:
        raise ValueError("give cond, cond_grid or tokens (at least the batch must be known)")
    B, device = given[0].shape[0], given[0].device
    prefix = cond.long() if cond is not None else torch.zeros(B, 0, dtype=torch.long, device=device)
    n_prefix = prefix.shape[1]
    n_cgrid = wh * ww if cond_grid is not None else 0
    n_ctx = n_prefix + n_cgrid
    if n_ctx == 0:
        raise ValueError("need conditioning: a prefix (e.g. an SOS token) and/or a cond grid")
    if n_ctx + wh * ww - 1 > gpt.block_size:
        raise ValueError(
            f"prefix ({n_prefix}) + cond window ({n_cgrid}) + window ({wh * ww}) - 1 tokens "
            f"exceed block_size={gpt.block_size}"
        )
    if gpt.training:
        raise RuntimeError("sampling needs the transformer in eval mode")
    cgrid = None if cond_grid is None else cond_grid.long().reshape(B, h, w)
    canvas = torch.zeros(B, h, w, dtype=torch.long, device=device)
    if tokens is not None:
        canvas.copy_(tokens.reshape(B, h, w))
    known_bw = torch.zeros(B, h * w, dtype=torch.bool, device=device)
    if known is not None:
        known_bw = known.to(device=device, dtype=torch.bool).expand(B, h * w)
    everywhere = known_bw.all(dim=0).tolist()
    targets = [p for p in range(h * w) if not everywhere[p]]
    partly = known_bw.any(dim=0).tolist()
    keep_prefix = n_prefix if gpt.n_unmasked <= n_prefix else 0

    sampler = TokenSampler(B, config, generator)
    G = sampler.groups
    seq = torch.empty(G * B, n_ctx + wh * ww, dtype=torch.long, device=device)
    seq[:B, :n_prefix] = prefix
    if G == 2:
        seq[B:, :n_ctx] = null_rows(null_cond, B, n_ctx, device)
    flat = canvas.view(B, h * w)
    origin, valid = None, 0
    with torch.inference_mode():
        cache = gpt.setup_cache(G * B, seq.shape[1] - 1) if config.use_cache else None
        for step, p in enumerate(tqdm(targets, desc="sampling", disable=not progress)):
            i, j = divmod(p, w)
            r0, c0 = window_start(i, h, wh), window_start(j, w, ww)
            if (r0, c0) != origin:
                origin, valid = (r0, c0), min(valid, keep_prefix)
                if cgrid is not None:
                    seq[:B, n_prefix:n_ctx] = cgrid[:, r0 : r0 + wh, c0 : c0 + ww].reshape(B, -1)
                crop = canvas[:, r0 : r0 + wh, c0 : c0 + ww].reshape(B, -1)  # (B, wh*ww)
                seq[:, n_ctx:] = crop if G == 1 else crop.repeat(G, 1)
            n = n_ctx + (i - r0) * ww + (j - c0)  # tokens before the target in `seq`
            if cache is not None:
                start = min(valid, n - 1)
                logits = gpt.forward_cached(seq[:, start:n], start, cache, last_only=True)[:, -1]
                valid = n
            else:
                logits = gpt(seq[:, :-1])[0][:, n - 1]
            drawn, probs = sampler(logits)
            if partly[p]:
                drawn = torch.where(known_bw[:, p], flat[:, p], drawn)
            flat[:, p] = drawn
            seq[:, n] = drawn if G == 1 else drawn.repeat(G)
            if callback is not None:
                callback(step, probs)
    return flat
