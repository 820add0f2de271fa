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

from taming.config import ConfigError
from taming.pipeline.conditions import check_eval, encode_condition, null_check, plan_grid
from taming.pipeline.errors import SampleError
from taming.pipeline.sample import decode, sampling_config
from taming.sampling.config import SamplingConfig
from taming.sampling.sample import StepCallback

__all__ = ["complete_image", "known_mask"]


def known_mask(grid: tuple[int, int], keep_top: float | None, mask: Tensor | None) -> Tensor:
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
    config: SamplingConfig | None = None,
    *,
    keep_top: float | None = None,
    mask: Tensor | None = None,
    generator: torch.Generator | None = None,
    batch_size: int = 25,
    window: tuple[int, int] | None = None,
    progress: bool = False,
    callback: StepCallback | None = None,
    **settings: Any,
) -> tuple[Tensor, Tensor, Tensor]:
    """Keep part of an image's tokens and sample the rest, `n` times.

    Args:
        model: the transformer model (eval mode).
        image: `(1, 3, H, W)` (or `(3, H, W)`) in [-1, 1], `H, W` multiples of `f`.
        n: number of completions.
        cond: condition as in `sample_images` (None for unconditional models).
        config: decoding settings (`SamplingConfig`; keyword `settings` override fields).
        keep_top: keep this fraction of the tokens in raster order (default 0.5: the top
            half), or
        mask: a `(h, w)` or `(H, W)` map, true/1 = keep (area-resized to the latent grid,
            kept where >= 0.5).
        generator, batch_size, window, progress, callback: as in `sample_images` /
            `iter_samples`. Grids larger than the window use the sliding window.

    Returns:
        `(images (n, 3, H, W), tokens (n, h, w), known (h, w) bool)`; the kept tokens equal
        the image's own codes.
    """
    config = sampling_config(config, settings)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4 or image.shape[0] != 1:
        raise SampleError(f"complete_image takes one image (1, 3, H, W), got {tuple(image.shape)}")
    check_eval(model)
    null_check(model, config.cfg_scale)
    size = tuple(image.shape[-2:])
    try:
        model.latent_grid(size)  # checks the size
    except ConfigError as e:
        raise SampleError(str(e)) from None
    z = model.encode_codes(image)  # (1, h, w) raster
    c = encode_condition(model, cond, n, size, window)
    plan = plan_grid(model, c, size, window)
    known = known_mask(plan.grid, keep_top, mask).to(model.device)  # (h*w,) raster
    z_flat = z.reshape(1, -1)
    images, tokens = [], []
    bar = tqdm(total=n, desc="completing", unit="img", disable=not progress)
    with bar:
        for start in range(0, n, batch_size):
            b = min(batch_size, n - start)
            cb = c.rows(start, b)
            codes = model.sample_codes(
                cb.prefix,
                cb.grid,
                plan.grid,
                config,
                window=plan.window,
                tokens=z_flat.expand(b, -1),
                known=known,
                generator=generator,
                callback=callback,
            )  # (b, h, w) raster
            images.append(decode(model, codes))
            tokens.append(codes.cpu())
            bar.update(b)
    return torch.cat(images), torch.cat(tokens), known.reshape(plan.grid).cpu()
