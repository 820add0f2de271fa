"""Reconstruction metrics between image batches in [-1, 1]: PSNR.

PSNR is computed on the [0, 1] scale (peak 1), per image, then averaged, as torchmetrics'
`PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean", dim=(1, 2, 3))` does.
"""

from __future__ import annotations

import torch

__all__ = ["psnr", "psnr_per_image"]


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB `(B,)` of image batches `(B, C, H, W)` in [-1, 1] (both clamped)."""
    a = (x.detach().double().clamp(-1, 1) + 1) / 2
    b = (y.detach().double().clamp(-1, 1) + 1) / 2
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)  # (B,)
    return 10 * torch.log10(1.0 / mse)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean PSNR in dB over a batch (see `psnr_per_image`)."""
    return psnr_per_image(x, y).mean()
