"""What `taming sample` shows besides the samples: reconstructions, masks, condition images."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from taming.pipeline.geometry import _device, _stage
from taming.pipeline.sample import _decode


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
