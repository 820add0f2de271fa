"""Conditions of image-level sampling: what a batch of samples is conditioned on.

"Taming Transformers" (Esser et al., CVPR 2021, §3.2): the condition is tokenised by the cond
stage and prepended to the image tokens; SOS tokens for unconditional models, class ids, the
codes of a spatial map (segmentation, depth, an image) on a grid, or layout token lists. With
classifier-free guidance (Ho & Salimans 2022) the null condition is the model's null token.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from taming.pipeline.errors import SampleError
from taming.pipeline.geometry import (
    _device,
    _is_layout,
    _is_unconditional,
    _n_classes,
    _stage,
    first_stage_factor,
    training_window,
)

logger = logging.getLogger(__name__)


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
