"""What `taming sample` shows besides the samples: reconstructions, masks, condition images.

The completion grid reads original | reconstruction | kept part | completions (Esser et al.,
CVPR 2021, Fig. 3 shows completions the same way).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from taming.pipeline.sample import decode

__all__ = ["condition_image", "masked", "reconstruct"]


@torch.no_grad()
def reconstruct(model: Any, image: Tensor) -> Tensor:
    """The first stage's reconstruction of an image (what completion starts from)."""
    return decode(model, model.encode_codes(image))


def masked(image: Tensor, known: Tensor, f: int) -> Tensor:
    """The image with the tokens to be sampled greyed out."""
    m = known.float()[None, None]  # (1, 1, h, w)
    m = F.interpolate(m, scale_factor=f, mode="nearest")
    return image * m


def condition_image(model: Any, cond: Tensor) -> Tensor | None:
    """A displayable `(1, 3|1, H, W)` view of a spatial condition in [-1, 1], or None."""
    return model.condition_to_rgb(cond)
