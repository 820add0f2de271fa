"""Image-level sampling from a trained `Net2NetTransformer` (what `taming sample` runs).

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021):
the transformer draws first-stage codes after a condition (SOS token, class token, the codes of
a segmentation/depth map, a layout), the first stage decodes them to pixels. This module puts
the token-level samplers of `taming.sampling` behind image-level functions:

- `sample_images(model, n, cond=..., size=...)`: `n` images, in batches, with top-k / top-p /
  temperature, classifier-free guidance (`cfg_scale`, models trained with
  `cond_drop_prob > 0`) and a seedable generator. A latent grid of the training window is
  sampled with the KV cache; a larger one (e.g. 512x1024 px from a 256 px model) with the
  sliding window of §3.2 (`taming.sampling.sample_sliding_window`), for prefix conditions
  (SOS/class) and spatial ones (the condition's codes on the same grid).
- `complete_image(model, image, keep_top=0.5 | mask=...)`: keep some of an image's tokens
  and sample the others.
- `rejection_sample(model, n, scorer, acceptance)`: draw `ceil(n / acceptance)` candidates and
  keep the `n` best by a user scorer (the classifier-based rejection of the paper's
  class-conditional ImageNet results; SPEC §5.7).
- `load_condition`, `load_scorer`, `make_grid`, `save_images`, `load_sampling_model`.
- `run_sampling(SampleOptions(...))`: the `taming sample` command, with the output layout of
  the original `scripts/sample_fast.py`:
  `<out>/samples/top_k_{k}_temp_{t:.2f}_top_p_{p}/{global_step}/[{class}/]{count:06}.png`,
  plus `grid.png` and `summary.json`.

Images are float tensors `(N, 3, H, W)` in [-1, 1] on the CPU; tokens are `(N, h, w)` code
grids in raster order. Errors the caller can fix raise `SampleError` (a `ConfigError`, so the
CLI prints them as one line).
"""

from __future__ import annotations

import importlib
import importlib.util
import json
import logging
import math
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor
from tqdm import tqdm

from taming.config import ConfigError
from taming.images import load as load_image
from taming.images import make_grid, save_images, to_pil

logger = logging.getLogger(__name__)

__all__ = [
    "SampleError",
    "SampleOptions",
    "SampleResult",
    "complete_image",
    "coordinate_map",
    "first_stage_factor",
    "iter_samples",
    "latent_grid",
    "load_condition",
    "load_sampling_model",
    "load_scorer",
    "make_grid",
    "parse_classes",
    "rejection_sample",
    "run_sampling",
    "sample_images",
    "save_images",
    "to_pil",
    "training_window",
]

Scorer = Callable[[Tensor, Tensor | None], Any]
"""`scorer(images (N, 3, H, W) in [-1, 1], class_ids (N,) or None) -> scores (N,)`."""


class SampleError(ConfigError):
    """A sampling request that cannot be carried out (an option, file or model mismatch)."""


# ---------------------------------------------------------------------------------------------
# model geometry and conditions


def first_stage_factor(model: Any) -> int:
    """Downsampling factor `f` of the first stage (`2 ** (len(ch_mult) - 1)`)."""
    ddconfig = getattr(model.first_stage_model, "ddconfig", None)
    if not ddconfig or "ch_mult" not in ddconfig:
        raise SampleError("the first stage has no ddconfig.ch_mult: cannot tell its factor f")
    return 2 ** (len(ddconfig["ch_mult"]) - 1)


def training_window(model: Any) -> tuple[int, int]:
    """Latent grid `(h, w)` the transformer was trained on: first-stage `resolution / f`."""
    f = first_stage_factor(model)
    res = int(model.first_stage_model.ddconfig.get("resolution", 0))
    if res < f:
        raise SampleError("the first stage has no ddconfig.resolution: pass window=(h, w)")
    return res // f, res // f


def latent_grid(model: Any, size: tuple[int, int]) -> tuple[int, int]:
    """Latent grid `(h, w)` of an image size `(H, W)`; both must be multiples of `f`."""
    f = first_stage_factor(model)
    H, W = size
    if H <= 0 or W <= 0 or H % f or W % f:
        raise SampleError(
            f"size {H}x{W} (HxW) is not a positive multiple of the first stage's factor "
            f"f={f}; e.g. {max(f, H // f * f)}x{max(f, W // f * f)}"
        )
    return H // f, W // f


def _device(model: Any) -> torch.device:
    return model.transformer.tok_emb.weight.device


def _stage(model: Any) -> Any:
    return model.cond_stage_model


def _is_unconditional(model: Any) -> bool:
    from taming.cond.stages import SOSProvider

    return bool(getattr(model, "be_unconditional", False)) or isinstance(_stage(model), SOSProvider)


def _n_classes(model: Any) -> int | None:
    from taming.cond.stages import Labelator

    stage = _stage(model)
    return int(stage.n_classes) if isinstance(stage, Labelator) else None


def _is_layout(model: Any) -> bool:
    from taming.cond.stages import DummyCondStage

    return isinstance(_stage(model), DummyCondStage)


def _check_identity_permuter(model: Any, what: str) -> None:
    from taming.transformer.permuter import Identity

    if not isinstance(model.permuter, Identity):
        raise SampleError(
            f"{what} works on raster-order tokens; this model uses the "
            f"{type(model.permuter).__name__} permuter"
        )


@dataclass
class _Condition:
    """The tokens a batch is conditioned on."""

    prefix: Tensor | None  # (1 or B, Lp) tokens before the image
    grid: Tensor | None  # (1 or B, hc, wc) spatial condition codes
    length: int  # Lc: prefix or flattened grid length

    def rows(self, start: int, b: int) -> _Condition:
        def take(t: Tensor | None) -> Tensor | None:
            if t is None:
                return None
            return t.expand(b, *t.shape[1:]) if t.shape[0] == 1 else t[start : start + b]

        return _Condition(take(self.prefix), take(self.grid), self.length)

    def tokens(self) -> Tensor:
        """The whole condition as a prefix `(B, Lc)`."""
        if self.prefix is not None:
            return self.prefix
        return self.grid.reshape(self.grid.shape[0], -1)


@torch.no_grad()
def _encode_condition(model: Any, cond: Any, n: int) -> _Condition:
    """SOS / class ids / token lists / spatial condition tensors -> `_Condition`."""
    device = _device(model)
    if _is_unconditional(model):
        if cond is not None:
            raise SampleError("the model is unconditional: it takes no condition or classes")
        sos = torch.full((1, 1), int(model.sos_token), dtype=torch.long, device=device)
        return _Condition(sos, None, 1)
    n_classes = _n_classes(model)
    if n_classes is not None:
        if cond is None:
            raise SampleError(f"the model is class-conditional: give class ids in [0, {n_classes})")
        ids = torch.as_tensor(cond, dtype=torch.long, device=device).reshape(-1)
        if ids.numel() not in (1, n):
            raise SampleError(f"give 1 or {n} class ids, got {ids.numel()}")
        bad = [int(i) for i in ids.tolist() if not 0 <= int(i) < n_classes]
        if bad:
            raise SampleError(
                f"class id {bad[0]} is out of range: the model has {n_classes} classes"
            )
        return _Condition(ids[:, None], None, 1)
    if cond is None:
        raise SampleError(f"the model is conditioned on '{model.cond_stage_key}': give a condition")
    c = torch.as_tensor(cond).to(device)
    if _is_layout(model):
        if c.ndim == 1:
            c = c[None]
        if c.ndim != 2 or c.dtype.is_floating_point or c.shape[0] not in (1, n):
            raise SampleError(
                f"layout conditions are (1 or {n}, L) token ids, got {c.dtype} {tuple(c.shape)}"
            )
        return _Condition(c.long(), None, c.shape[1])
    if c.ndim != 4:
        raise SampleError(
            f"a '{model.cond_stage_key}' condition is a (B, C, H, W) map, got {tuple(c.shape)}"
        )
    if c.shape[0] not in (1, n):
        raise SampleError(f"give 1 or {n} conditions, got {c.shape[0]}")
    if c.dtype == torch.float64:
        c = c.float()
    quant_c, c_idx = model.encode_to_c(c)  # (B, Lc)
    hc, wc = quant_c.shape[-2:]
    if c_idx.shape[1] != hc * wc:
        return _Condition(c_idx, None, c_idx.shape[1])
    return _Condition(None, c_idx.reshape(-1, hc, wc), hc * wc)


def coordinate_map(size: tuple[int, int]) -> Tensor:
    """The FacesHQ coordinate condition of an `(H, W)` image: `arange(H*W) / (H*W)`,
    `(1, 1, H, W)` in [0, 1) (raster position of each pixel)."""
    H, W = size
    return (torch.arange(H * W, dtype=torch.float32) / (H * W)).reshape(1, 1, H, W)


def _default_condition(
    model: Any, cond: Any, size: tuple[int, int] | None, window: tuple[int, int] | None
) -> Any:
    """`cond`, or for a `CoordStage` model without one, the coordinate map of the sample."""
    from taming.cond.stages import CoordStage

    if cond is not None or not isinstance(_stage(model), CoordStage):
        return cond
    if size is None:
        f = first_stage_factor(model)
        wh, ww = window if window is not None else training_window(model)
        size = (wh * f, ww * f)
    return coordinate_map(size)


# ---------------------------------------------------------------------------------------------
# sampling


def _null_prefix(model: Any, cond: _Condition, cfg_scale: float) -> Tensor | None:
    if cfg_scale == 1.0:
        return None
    if _is_unconditional(model):
        raise SampleError("--cfg-scale needs a conditional model; this one is unconditional")
    if float(getattr(model, "cond_drop_prob", 0.0)) <= 0.0:
        logger.warning(
            "cfg_scale=%g, but the model was not trained with condition dropout "
            "(cond_drop_prob=0): its null token %d never appeared in training; guidance will "
            "mostly add noise",
            cfg_scale,
            model.null_token,
        )
    return torch.full((1, cond.length), int(model.null_token), dtype=torch.long)


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


# ---------------------------------------------------------------------------------------------
# completion


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


# ---------------------------------------------------------------------------------------------
# rejection sampling


def _scores(scorer: Scorer, images: Tensor, class_ids: Tensor | None) -> Tensor:
    s = scorer(images, class_ids)
    s = torch.as_tensor(s if not isinstance(s, np.ndarray) else s.copy())
    s = s.detach().float().cpu().reshape(-1)
    if s.numel() != images.shape[0]:
        raise SampleError(f"the scorer returned {s.numel()} scores for {images.shape[0]} images")
    return s


def rejection_sample(
    model: Any,
    n: int,
    scorer: Scorer,
    acceptance: float,
    cond: Any = None,
    *,
    batch_size: int = 25,
    progress: bool = False,
    **sample_kwargs: Any,
) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Sample `ceil(n / acceptance)` candidates and keep the `n` with the highest scores.

    Candidates are scored batch by batch (only the best `n` are held in memory).

    Args:
        model: the transformer model.
        n: images to keep.
        scorer: `scorer(images (N, 3, H, W) in [-1, 1], class_ids (N,) or None) -> (N,)`.
        acceptance: fraction of candidates kept, in (0, 1].
        cond: condition as in `sample_images` (one class id for class models).
        batch_size: candidates per batch.
        progress: tqdm bar over the candidates.
        **sample_kwargs: `size`, `top_k`, `top_p`, `temperature`, `cfg_scale`, `generator`,
            `use_cache`, `window` of `sample_images`.

    Returns:
        `(images (n, ...), tokens (n, h, w), scores (n,), info)`, best first; `info` has
        `candidates`, `kept`, `acceptance_rate`, `score_mean_all`, `score_mean_kept`.
    """
    if not 0.0 < acceptance <= 1.0:
        raise SampleError(f"acceptance must be in (0, 1], got {acceptance}")
    candidates = math.ceil(n / acceptance - 1e-9)
    class_ids = None
    if _n_classes(model) is not None and cond is not None:
        ids = torch.as_tensor(cond, dtype=torch.long).reshape(-1)
        if ids.numel() != 1:
            raise SampleError("rejection sampling takes one class id per call")
        class_ids = ids
    best_x = best_t = best_s = None
    total, count = 0.0, 0
    bar = tqdm(total=candidates, desc="rejection sampling", unit="img", disable=not progress)
    with bar:
        for x, t in iter_samples(
            model, candidates, cond, batch_size=batch_size, progress=False, **sample_kwargs
        ):
            ids = None if class_ids is None else class_ids.expand(x.shape[0])
            s = _scores(scorer, x, ids)
            total, count = total + float(s.sum()), count + s.numel()
            if best_s is None:
                best_x, best_t, best_s = x, t, s
            else:
                best_x, best_t = torch.cat((best_x, x)), torch.cat((best_t, t))
                best_s = torch.cat((best_s, s))
            keep = torch.topk(best_s, min(n, best_s.numel())).indices  # best first
            best_x, best_t, best_s = best_x[keep], best_t[keep], best_s[keep]
            bar.update(x.shape[0])
    info = {
        "candidates": candidates,
        "kept": int(best_s.numel()),
        "acceptance_rate": best_s.numel() / candidates,
        "score_mean_all": total / max(count, 1),
        "score_mean_kept": float(best_s.mean()),
    }
    return best_x, best_t, best_s, info


def load_scorer(spec: str) -> Scorer:
    """`"package.module:function"` or `"path/to/file.py:function"` -> the function."""
    if ":" not in spec:
        raise SampleError(f"--rejection: expected MODULE:FUNCTION, got '{spec}'")
    module_name, func_name = spec.rsplit(":", 1)
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise SampleError(f"--rejection: file not found: {path}")
            spec_ = importlib.util.spec_from_file_location(f"_taming_scorer_{path.stem}", path)
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # modules next to the user, as `python -m`
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise SampleError(f"--rejection: cannot import '{module_name}': {e}") from e
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise SampleError(f"--rejection: '{module_name}' has no function '{func_name}'")
    return fn


# ---------------------------------------------------------------------------------------------
# condition files


def _resize_float(x: np.ndarray, size: tuple[int, int] | None, method: Any) -> np.ndarray:
    if size is None or x.shape[:2] == tuple(size):
        return x
    img = Image.fromarray(x.astype(np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), method), dtype=np.float32)


def _fit_to_factor(
    arr: np.ndarray, f: int, size: tuple[int, int] | None, what: str
) -> tuple[int, int] | None:
    """The size to resize a condition to: `size`, or its own floored to multiples of `f`."""
    if size is not None:
        return size
    h, w = arr.shape[:2]
    if h % f == 0 and w % f == 0:
        return None
    new = (max(f, h // f * f), max(f, w // f * f))
    logger.info("%s: %dx%d is not a multiple of f=%d; resized to %dx%d", what, h, w, f, *new)
    return new


def load_condition(model: Any, path: str | Path, size: tuple[int, int] | None = None) -> Tensor:
    """Read a condition file for the model's cond stage, as `sample_images` takes it.

    - segmentation cond stage (`VQSegmentationModel`, `n_labels` classes): a label-map PNG
      (mode L/P, one label per pixel), nearest-resized, one-hot `(1, n_labels, H, W)`;
    - depth (a `VQModel` with one input channel): a D-RIN RGBA-float PNG
      (`taming.data.imagenet.load_depth`) or an 8/16-bit grayscale PNG, min-max normalised
      to [-1, 1] like the training data, bilinear-resized, `(1, 1, H, W)`;
    - an RGB image (`VQModel` with 3 input channels, e.g. `__is_first_stage__`): `(1, 3, H,
      W)` in [-1, 1], bicubic-resized;
    - layout tokens (`DummyCondStage`): a `.txt` of integers, `.npy` or `.pt`, `(1, L)`.

    Args:
        model: the transformer model.
        path: the file.
        size: `(H, W)` to resize to (default: the file's size, floored to multiples of `f`).
    """
    from taming.autoencoder.segmentation import VQSegmentationModel
    from taming.autoencoder.vqmodel import VQModel

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"condition file not found: {path}")
    stage = _stage(model)
    if _is_unconditional(model):
        raise SampleError("the model is unconditional: it takes no --condition")
    if _n_classes(model) is not None:
        raise SampleError("the model is class-conditional: give --classes, not --condition")
    if _is_layout(model):
        return _load_tokens(path)
    if not isinstance(stage, VQModel):
        raise SampleError(
            f"--condition files are not supported for a {type(stage).__name__} cond stage; "
            "use the Python API (sample_images(model, n, cond=tensor))"
        )
    f = first_stage_factor(model)
    from taming.data.io import BadImageError

    try:
        if isinstance(stage, VQSegmentationModel):
            return _load_segmentation(path, int(stage.n_labels), f, size)
        channels = int(stage.ddconfig.get("in_channels", 3))
        if channels == 1:
            return _load_depth(path, f, size)
        if channels == 3:
            return _load_rgb(path, f, size)
    except BadImageError as e:
        raise SampleError(f"--condition: {e}") from None
    raise SampleError(f"--condition: a cond stage with {channels} input channels is not supported")


def _load_tokens(path: Path) -> Tensor:
    if path.suffix == ".npy":
        arr = np.load(path)
    elif path.suffix in (".pt", ".pth"):
        arr = torch.load(path, map_location="cpu", weights_only=True)
    else:
        text = path.read_text().replace(",", " ").split()
        try:
            arr = [int(t) for t in text]
        except ValueError as e:
            raise SampleError(f"--condition {path}: expected integer tokens ({e})") from None
    t = torch.as_tensor(arr).long()
    return t.reshape(1, -1) if t.ndim <= 1 else t


def _load_segmentation(path: Path, n_labels: int, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.segmentation import load_label_map

    labels = load_label_map(str(path))  # (H, W) uint8
    size = _fit_to_factor(labels, f, size, str(path))
    if size is not None:
        img = Image.fromarray(labels, mode="L").resize((size[1], size[0]), Image.Resampling.NEAREST)
        labels = np.asarray(img)
    top = int(labels.max())
    if top >= n_labels:
        raise SampleError(
            f"--condition {path}: label {top} >= n_labels={n_labels} of the segmentation cond stage"
        )
    onehot = np.eye(n_labels, dtype=np.float32)[labels]  # (H, W, n_labels)
    return torch.from_numpy(onehot).permute(2, 0, 1)[None].contiguous()


def _load_depth(path: Path, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.imagenet import load_depth

    with Image.open(path) as img:
        mode = img.mode
        if mode == "RGBA":
            depth = None
        else:
            if mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
                raise SampleError(
                    f"--condition {path}: a depth map is an RGBA-float or grayscale PNG, "
                    f"got mode {mode}"
                )
            depth = np.asarray(img, dtype=np.float64)
    if depth is None:
        depth = load_depth(str(path))  # (H, W) in [-1, 1]
    else:
        lo, hi = float(depth.min()), float(depth.max())
        depth = (2.0 * (depth - lo) / max(hi - lo, 1e-8) - 1.0).astype(np.float32)
    size = _fit_to_factor(depth, f, size, str(path))
    depth = np.clip(_resize_float(depth, size, Image.Resampling.BILINEAR), -1.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(depth))[None, None]


def _load_rgb(path: Path, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.io import load_image

    img = load_image(str(path))
    arr = np.asarray(img)
    size = _fit_to_factor(arr, f, size, str(path))
    if size is not None:
        img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # (H, W, 3)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


def load_image_tensor(path: str | Path, f: int, size: tuple[int, int] | None = None) -> Tensor:
    """An RGB image file as `(1, 3, H, W)` in [-1, 1]: `size` (center crop), or its own size
    cut to multiples of `f` (`taming.images.load`)."""
    from taming.data.io import BadImageError

    try:
        return load_image(path, size=size, multiple_of=f)
    except BadImageError as e:
        raise SampleError(str(e)) from None


def load_mask(path: str | Path) -> Tensor:
    """A mask PNG as a float `(H, W)` map in [0, 1] (white = keep)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)


# ---------------------------------------------------------------------------------------------
# the `taming sample` command


def load_sampling_model(
    resume: str | Path,
    ckpt: str | Path | None = None,
    *,
    base: Sequence[str] = (),
    overrides: Sequence[str] = (),
    unsafe: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Any, int, Path | None]:
    """A `Net2NetTransformer` from a run/release folder, a checkpoint in one, or a config.

    Returns:
        `(model in eval mode, global step, run folder or None)`. The step is the checkpoint's
        optimizer-step count (`taming.step_count` of our runs, `global_step` of original ones).
    """
    from omegaconf import OmegaConf

    from taming.compat.checkpoint import read_checkpoint
    from taming.cond.net2net import Net2NetTransformer
    from taming.config import instantiate_from_config, load_config
    from taming.loading import drop_nested_ckpt_paths, find_run_files, load_model_state

    resume = Path(resume)
    run_dir: Path | None = None
    if not resume.exists():
        raise FileNotFoundError(f"-r/--resume: not found: {resume}")
    if resume.is_file() and resume.suffix not in (".yaml", ".yml"):
        ckpt = ckpt or resume  # a checkpoint inside a run folder
        parent = resume.parent
        run_dir = parent.parent if parent.name in ("checkpoints", "ckpts") else parent
        configs, _ = find_run_files(run_dir)
    else:
        configs, found = find_run_files(resume)
        if resume.is_dir():
            run_dir = resume
        ckpt = ckpt or found
    cfg = load_config([*configs, *base], list(overrides))
    model_cfg = cfg.get("model", cfg)
    if "target" not in model_cfg:
        raise SampleError(f"{configs[0]}: no 'model.target' in the config")
    content = None
    if ckpt is not None:
        content = read_checkpoint(ckpt, unsafe=unsafe)  # checks the file exists
        model_cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
        drop_nested_ckpt_paths(model_cfg.get("params"))  # the checkpoint holds the stages
    model = instantiate_from_config(model_cfg, where="model")
    if not isinstance(model, Net2NetTransformer):
        raise SampleError(
            f"{resume}: is a {type(model).__name__}; `taming sample` needs a transformer "
            "(Net2NetTransformer) run"
        )
    step = 0
    if content is not None:
        load_model_state(model, content["state_dict"], source=str(ckpt))
        saved = (content.get("taming") or {}).get("step_count")
        step = int(saved if saved is not None else content.get("global_step", 0) or 0)
        logger.info("loaded %s (step %d)", ckpt, step)
    else:
        logger.warning("%s: no checkpoint found; the transformer is untrained", resume)
    return model.to(device).eval(), step, run_dir


def parse_classes(spec: str | None, n_classes: int) -> list[int]:
    """`"imagenet"`/`"all"`/None -> all classes; `"0,3,7"` -> `[0, 3, 7]` (checked)."""
    if spec is None or spec.strip().lower() in ("imagenet", "all", ""):
        return list(range(n_classes))
    try:
        ids = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise SampleError(
            f"--classes: expected 'imagenet' or ids like 0,3,7, got '{spec}'"
        ) from None
    bad = [i for i in ids if not 0 <= i < n_classes]
    if bad:
        raise SampleError(f"--classes: class id {bad[0]} is out of range [0, {n_classes})")
    if not ids:
        raise SampleError("--classes: no class ids given")
    return ids


def parse_size(spec: str | None) -> tuple[int, int] | None:
    """`"256"` -> (256, 256); `"512,1024"` (H,W) -> (512, 1024)."""
    if spec is None:
        return None
    try:
        parts = [int(s) for s in spec.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'")
    return parts[0], parts[1]


@dataclass
class SampleOptions:
    """Options of `taming sample` (see `taming.commands.sample`)."""

    resume: str
    ckpt: str | None = None
    outdir: str | None = None
    base: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    num_samples: int | None = None
    batch_size: int = 25
    top_k: int = 250
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    classes: str | None = None
    cfg_scale: float = 1.0
    condition: str | None = None
    size: str | None = None
    complete: str | None = None
    keep_top: float | None = None
    mask: str | None = None
    rejection: str | None = None
    acceptance: float = 0.1
    grid: bool = True
    grid_max: int = 64
    unsafe: bool = False
    device: str | None = None
    use_cache: bool = True
    decode_weights: str | None = None  # "bf16"/"fp16": low-precision decode weights (opt-in)
    progress: bool = True


@dataclass
class SampleResult:
    """Where `run_sampling` wrote what."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _class_seed(seed: int, key: int | None) -> int:
    """Seed of one class's draws (the same whichever other classes are sampled)."""
    if key is None:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(key) + 1]).generate_state(1)[0])


def _resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SampleError("--device cuda: no CUDA device available")
    return device


def _fmt(x: float) -> str:
    return f"{x:g}"


def run_sampling(opts: SampleOptions) -> SampleResult:
    """Run `taming sample`: load the model, sample as asked, write PNGs, grids and a summary."""
    t0 = time.perf_counter()
    device = _resolve_device(opts.device)
    if opts.temperature <= 0:
        raise SampleError(f"--temperature must be > 0, got {opts.temperature}")
    if not 0.0 < opts.top_p <= 1.0:
        raise SampleError(f"--top_p must be in (0, 1], got {opts.top_p}")
    if opts.top_k < 0:
        raise SampleError(f"--top_k must be >= 0 (0: off), got {opts.top_k}")
    if opts.mask is not None and opts.complete is None:
        raise SampleError("--mask needs --complete IMAGE")
    if opts.keep_top is not None and opts.complete is None:
        raise SampleError("--keep-top needs --complete IMAGE")
    if opts.mask is not None and opts.keep_top is not None:
        raise SampleError("give either --keep-top or --mask, not both")
    if opts.rejection is not None and opts.complete is not None:
        raise SampleError("--rejection samples from scratch; it cannot be combined with --complete")
    if opts.decode_weights is not None and not opts.use_cache:
        raise SampleError("--decode-weights applies to cached sampling; drop --no-cache")
    size = parse_size(opts.size)
    for path, flag in (
        (opts.condition, "--condition"),
        (opts.complete, "--complete"),
        (opts.mask, "--mask"),
    ):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag}: file not found: {path}")
    scorer = load_scorer(opts.rejection) if opts.rejection else None

    model, step, run_dir = load_sampling_model(
        opts.resume,
        opts.ckpt,
        base=opts.base,
        overrides=opts.overrides,
        unsafe=opts.unsafe,
        device=device,
    )
    if opts.decode_weights is not None:
        model.transformer.to_low_precision(opts.decode_weights)
    f = first_stage_factor(model)
    if size is not None:
        latent_grid(model, size)

    # the conditions: (folder name, cond) pairs
    n_classes = _n_classes(model)
    if opts.classes is not None and n_classes is None:
        raise SampleError("--classes: the model is not class-conditional")
    conds: list[tuple[str | None, Any]]
    cond_vis = None
    if n_classes is not None:
        if opts.condition is not None:
            raise SampleError("the model is class-conditional: give --classes, not --condition")
        conds = [(str(k), k) for k in parse_classes(opts.classes, n_classes)]
    elif opts.condition is not None:
        cond = load_condition(model, opts.condition, size)
        conds = [(None, cond)]
        cond_vis = _condition_image(model, cond)
        if size is None and cond.ndim == 4:
            size = tuple(cond.shape[-2:])
    else:
        from taming.cond.stages import CoordStage

        coords = isinstance(_stage(model), CoordStage)  # the coordinate map is made here
        if not (_is_unconditional(model) or coords):
            raise SampleError(
                f"the model is conditioned on '{model.cond_stage_key}': give --condition FILE"
            )
        conds = [(None, None)]
    if opts.cfg_scale != 1.0 and _is_unconditional(model):
        raise SampleError("--cfg-scale needs a conditional model; this one is unconditional")

    name = f"top_k_{opts.top_k}_temp_{opts.temperature:.2f}_top_p_{opts.top_p}"
    if opts.cfg_scale != 1.0:
        name += f"_cfg_{_fmt(opts.cfg_scale)}"
    if scorer is not None:
        name += f"_rejection_{_fmt(opts.acceptance)}"
    if opts.decode_weights is not None:
        name += f"_{opts.decode_weights}"
    base_dir = Path(opts.outdir) if opts.outdir else (run_dir or Path("."))
    folder = base_dir / "samples" / name / str(step)
    if opts.complete is not None:
        folder = folder / f"complete_{Path(opts.complete).stem}"
    elif opts.condition is not None:
        folder = folder / f"cond_{Path(opts.condition).stem}"
    folder.mkdir(parents=True, exist_ok=True)

    n = opts.num_samples
    if n is None:
        n = 4 if (opts.complete or opts.condition) else 50
    if n < 1:
        raise SampleError(f"-n/--num_samples must be >= 1, got {n}")
    common = {
        "top_k": opts.top_k or None,
        "top_p": opts.top_p,
        "temperature": opts.temperature,
        "cfg_scale": opts.cfg_scale,
        "use_cache": opts.use_cache,
    }
    result = SampleResult(folder)
    summary: dict[str, Any] = {
        "resume": str(opts.resume),
        "global_step": step,
        "num_samples": n,
        "batch_size": opts.batch_size,
        "top_k": opts.top_k,
        "top_p": opts.top_p,
        "temperature": opts.temperature,
        "cfg_scale": opts.cfg_scale,
        "decode_weights": opts.decode_weights or "fp32",
        "seed": opts.seed,
        "device": str(device),
        "factor": f,
        "window": list(training_window(model)),
    }
    if cond_vis is not None:
        cond_path = folder / "condition.png"
        to_pil(cond_vis[0]).save(cond_path)
        result.files.append(cond_path)

    image = None
    if opts.complete is not None:
        image = load_image_tensor(opts.complete, f, size)
        mask = load_mask(opts.mask) if opts.mask else None
        summary.update(complete=str(opts.complete), keep_top=opts.keep_top, mask=opts.mask)

    total = n * len(conds) if scorer is None else math.ceil(n / opts.acceptance - 1e-9) * len(conds)
    bar = tqdm(total=total, desc="sampling", unit="img", disable=not opts.progress)
    per_class: dict[str, Any] = {}
    with bar:
        for key, cond in conds:
            out = folder / key if key is not None else folder
            gen = _generator(device, _class_seed(opts.seed, None if key is None else int(key)))
            if image is not None:
                images, tokens, known = complete_image(
                    model,
                    image,
                    n,
                    cond,
                    keep_top=opts.keep_top,
                    mask=mask,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                )
                bar.update(n)
                paths = save_images(images, out)
                rec = _reconstruct(model, image)
                shown = torch.cat((image.cpu(), rec, _masked(rec, known, f), images))
                torch.save({"tokens": tokens, "known": known}, out / "tokens.pt")
            elif scorer is not None:
                images, tokens, scores, info = rejection_sample(
                    model,
                    n,
                    scorer,
                    opts.acceptance,
                    cond,
                    size=size,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                )
                bar.update(info["candidates"])
                paths = save_images(images, out)
                info["scores"] = [round(float(s), 6) for s in scores]
                per_class[key or "all"] = info
                logger.info(
                    "%s: kept %d of %d candidates (acceptance rate %.3f); mean score %.4g -> %.4g",
                    f"class {key}" if key is not None else "samples",
                    info["kept"],
                    info["candidates"],
                    info["acceptance_rate"],
                    info["score_mean_all"],
                    info["score_mean_kept"],
                )
                shown = images
            else:
                paths, shown_list, count = [], [], 0
                for x, _ in iter_samples(
                    model,
                    n,
                    cond,
                    size=size,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                ):
                    paths += save_images(x, out, start=count)
                    count += x.shape[0]
                    if sum(s.shape[0] for s in shown_list) < opts.grid_max:
                        shown_list.append(x)
                    bar.update(x.shape[0])
                shown = torch.cat(shown_list)
            result.files += paths
            if opts.grid:
                grid_path = out / "grid.png"
                make_grid(shown[: opts.grid_max]).save(grid_path)
                result.grids.append(grid_path)
    if per_class:
        summary["rejection"] = {
            "scorer": opts.rejection,
            "acceptance": opts.acceptance,
            "per_class": per_class,
        }
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["images"] = len([p for p in result.files if p.name != "condition.png"])
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    result.summary = summary
    return result


@torch.no_grad()
def _reconstruct(model: Any, image: Tensor) -> Tensor:
    """The first stage's reconstruction of an image (what completion starts from)."""
    quant, z = model.encode_to_z(image.to(_device(model)).float())
    return _decode(model, z, tuple(quant.shape[-2:]))


def _masked(image: Tensor, known: Tensor, f: int) -> Tensor:
    """The image with the tokens to be sampled greyed out (grid: original | reconstruction |
    kept part | completions)."""
    m = known.float()[None, None]  # (1, 1, h, w)
    m = F.interpolate(m, scale_factor=f, mode="nearest")
    return image * m


def _condition_image(model: Any, cond: Tensor) -> Tensor | None:
    """A displayable `(1, 3|1, H, W)` view of a spatial condition in [-1, 1], or None."""
    if cond.ndim != 4:
        return None
    if cond.shape[1] > 3:
        stage = _stage(model)
        if hasattr(stage, "to_rgb"):
            with torch.no_grad():
                return stage.to_rgb(cond.to(_device(model))).cpu()
        return None
    return cond
