"""Image completion: keep part of an image's codes and sample the rest.

Esser et al. (CVPR 2021, Fig. 3/§4): the given tokens are context (a prefix, or forced tokens
anywhere in raster order); the others are drawn. Grids larger than the training window use the
sliding window, which keeps the given tokens too.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from taming.pipeline.conditions import _default_condition, _encode_condition, _null_prefix
from taming.pipeline.errors import SampleError
from taming.pipeline.geometry import _device, first_stage_factor, latent_grid
from taming.pipeline.sample import _decode, _plan, _raster, _sample_sliding


def _known_mask(grid: tuple[int, int], keep_top: float | None, mask: Tensor | None) -> Tensor:
    """Boolean `(h*w,)` raster mask of the tokens to keep."""
    h, w = grid
    if mask is not None:
        m = torch.as_tensor(mask).float()
        while m.ndim > 2:
            m = m[0]
        if tuple(m.shape) != (h, w):
            m = F.interpolate(m[None, None], size=(h, w), mode="area")[0, 0]
        return (m >= 0.5).reshape(-1).cpu()
    frac = 0.5 if keep_top is None else float(keep_top)
    if not 0.0 <= frac <= 1.0:
        raise SampleError(f"keep_top must be a fraction in [0, 1], got {keep_top}")
    known = torch.zeros(h * w, dtype=torch.bool)
    known[: int(round(frac * h * w))] = True
    return known


@torch.no_grad()
def complete_image(
    model: Any,
    image: Tensor,
    n: int = 1,
    cond: Any = None,
    *,
    keep_top: float | None = None,
    mask: Tensor | None = None,
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float = 1.0,
    cfg_scale: float = 1.0,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    use_cache: bool = True,
    window: tuple[int, int] | None = None,
    progress: bool = False,
) -> tuple[Tensor, Tensor, Tensor]:
    """Keep part of an image's tokens and sample the rest, `n` times.

    Args:
        model: the transformer model (eval mode).
        image: `(1, 3, H, W)` (or `(3, H, W)`) in [-1, 1], `H, W` multiples of `f`.
        n: number of completions.
        cond: condition as in `sample_images` (None for unconditional models).
        keep_top: keep this fraction of the tokens in raster order (default 0.5: the top
            half), or
        mask: a `(h, w)` or `(H, W)` map, true/1 = keep (area-resized to the latent grid,
            kept where >= 0.5).
        top_k, top_p, temperature, cfg_scale, generator, batch_size, use_cache, window,
        progress: as in `sample_images`. Grids larger than the window use the sliding
        window.

    Returns:
        `(images (n, 3, H, W), tokens (n, h, w), known (h, w) bool)`; the kept tokens equal
        the image's own codes.
    """
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[0] != 1:
        raise SampleError(f"complete_image takes one image (1, 3, H, W), got {tuple(image.shape)}")
    if model.transformer.training:
        raise SampleError("sampling needs the model in eval mode (call model.eval())")
    device = _device(model)
    latent_grid(model, tuple(image.shape[-2:]))  # checks the size
    quant_z, z_seq = model.encode_to_z(image.to(device).float())  # (1, L) sequence order
    grid = tuple(quant_z.shape[-2:])
    cond = _default_condition(model, cond, _size_of(model, grid), window)
    c = _encode_condition(model, cond, n)
    grid, window, sliding = _plan(model, c, _size_of(model, grid), window)
    null = _null_prefix(model, c, cfg_scale)
    known = _known_mask(grid, keep_top, mask).to(device)  # (h*w,) raster
    z_raster = model.permuter(z_seq, reverse=True)  # (1, h*w)
    known_seq = model.permuter(known[None].long()).bool()[0]  # (L,) sequence order
    images, tokens = [], []
    top_k = top_k or None
    bar = tqdm(total=n, desc="completing", unit="img", disable=not progress)
    with bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            cb = c.rows(start, b)
            if sliding:
                out = _sample_sliding(
                    model,
                    cb,
                    grid,
                    window,
                    z_raster.expand(b, -1),
                    known,
                    top_k=top_k,
                    top_p=top_p,
                    temperature=temperature,
                    generator=generator,
                    use_cache=use_cache,
                    cfg_scale=cfg_scale,
                    null=null,
                )
                seq = model.permuter(out)
            else:
                seq = model.complete(
                    z_seq.expand(b, -1),
                    known_seq,
                    cb.tokens(),
                    temperature=temperature,
                    top_k=top_k,
                    top_p=top_p,
                    generator=generator,
                    use_cache=use_cache,
                    cfg_scale=cfg_scale,
                    null_cond=null,
                )
            images.append(_decode(model, seq, grid))
            tokens.append(_raster(model, seq, grid))
            bar.update(b)
    return torch.cat(images), torch.cat(tokens), known.reshape(grid).cpu()


def _size_of(model: Any, grid: tuple[int, int]) -> tuple[int, int]:
    f = first_stage_factor(model)
    return grid[0] * f, grid[1] * f
