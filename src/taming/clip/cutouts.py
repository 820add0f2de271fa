"""Random cutouts with augmentations, the views through which CLIP sees the image.

VQGAN+CLIP (Crowson et al., 2022) scores many random crops of the image, resized to CLIP's
input size, with flips and noise, so the image improves everywhere and not only in one
adversarial view. Each cutout here is one affine map (scale, offset, flip, small rotation) done
by `grid_sample`, plus a brightness/contrast jitter and Gaussian noise. The random draws are
kept apart from their application (`Cutouts.draw` -> `CutoutParams`, `Cutouts.apply`) so one
seeded set can score two images on exactly the same views.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["CutoutParams", "Cutouts"]


@dataclass
class CutoutParams:
    """The draws of `n` cutouts: affine maps, colour jitter and noise."""

    theta: Tensor  # (n, 2, 3) output -> input coordinates in [-1, 1]
    brightness: Tensor  # (n, 1, 1, 1)
    contrast: Tensor  # (n, 1, 1, 1)
    noise: Tensor  # (n, 3, S, S)


class Cutouts:
    """`n` cutouts of `cut_size` pixels from images `(1, 3, H, W)` in [-1, 1].

    Args:
        cut_size: side of each cutout (CLIP's input size).
        n: cutouts per step.
        cut_pow: exponent of the size draw (`u ** cut_pow`; above 1 favours small cutouts).
        min_frac: smallest cutout side as a fraction of the image's short side.
        flip: probability of a horizontal flip.
        rotate: largest rotation in degrees.
        jitter: largest brightness shift / contrast change (fractions).
        noise: largest standard deviation of the added Gaussian noise.
    """

    def __init__(
        self,
        cut_size: int,
        n: int = 32,
        cut_pow: float = 1.0,
        min_frac: float = 0.25,
        flip: float = 0.5,
        rotate: float = 10.0,
        jitter: float = 0.1,
        noise: float = 0.1,
    ) -> None:
        if n < 1 or cut_size < 1:
            raise ValueError(f"need n >= 1 cutouts of size >= 1, got n={n}, size={cut_size}")
        if not 0.0 < min_frac <= 1.0:
            raise ValueError(f"min_frac must be in (0, 1], got {min_frac}")
        self.cut_size, self.n, self.cut_pow, self.min_frac = cut_size, n, cut_pow, min_frac
        self.flip, self.rotate, self.jitter, self.noise = flip, rotate, jitter, noise

    def draw(self, image_hw: tuple[int, int], generator: torch.Generator) -> CutoutParams:
        """Draw `n` cutouts for an image of size `image_hw` (on the CPU, from `generator`)."""
        H, W = image_hw
        n, g = self.n, generator

        def u(*shape: int) -> Tensor:
            return torch.rand(*shape, generator=g)

        short = min(H, W)
        frac = self.min_frac + (1.0 - self.min_frac) * u(n) ** self.cut_pow  # side / short side
        sx, sy = frac * short / W, frac * short / H  # half extents in [-1, 1] coordinates
        cx, cy = (2 * u(n) - 1) * (1 - sx), (2 * u(n) - 1) * (1 - sy)
        sign = torch.where(u(n) < self.flip, -1.0, 1.0)
        angle = (2 * u(n) - 1) * math.radians(self.rotate)
        cos, sin = angle.cos(), angle.sin()
        theta = torch.stack(
            (
                torch.stack((sx * cos * sign, -sy * sin, cx), -1),
                torch.stack((sx * sin * sign, sy * cos, cy), -1),
            ),
            1,
        )  # (n, 2, 3)
        s = self.cut_size
        return CutoutParams(
            theta=theta,
            brightness=((2 * u(n) - 1) * self.jitter).view(n, 1, 1, 1),
            contrast=(1 + (2 * u(n) - 1) * self.jitter).view(n, 1, 1, 1),
            noise=torch.randn(n, 3, s, s, generator=g) * (u(n) * self.noise).view(n, 1, 1, 1),
        )

    def apply(self, image: Tensor, params: CutoutParams) -> Tensor:
        """Cut `image (1, 3, H, W)` in [-1, 1] into `(n, 3, S, S)` views, in [-1, 1]."""
        n, s = params.theta.shape[0], self.cut_size
        dev = image.device
        grid = F.affine_grid(params.theta.to(dev), [n, 3, s, s], align_corners=False)
        views = F.grid_sample(
            image.expand(n, -1, -1, -1),
            grid,
            mode="bilinear",
            padding_mode="reflection",
            align_corners=False,
        )  # (n, 3, S, S)
        mean = views.mean(dim=(1, 2, 3), keepdim=True)
        views = (views - mean) * params.contrast.to(dev) + mean + params.brightness.to(dev)
        return (views + params.noise.to(dev)).clamp(-1.0, 1.0)

    def __call__(self, image: Tensor, generator: torch.Generator) -> Tensor:
        """Fresh random views of `image (1, 3, H, W)`."""
        return self.apply(image, self.draw(tuple(image.shape[-2:]), generator))
