"""Reconstruction metrics between image batches in [-1, 1]: PSNR and SSIM.

Both are computed on the [0, 1] scale (peak / data range 1), per image, then averaged:

- PSNR as torchmetrics' `PeakSignalNoiseRatio(data_range=1.0, reduction="elementwise_mean",
  dim=(1, 2, 3))`;
- SSIM (Wang et al., "Image Quality Assessment: From Error Visibility to Structural
  Similarity", 2004) as torchmetrics' `StructuralSimilarityIndexMeasure(data_range=1.0)`
  (torchmetrics 1.x): an 11x11 Gaussian window with sigma 1.5 (side
  `2 * int(3.5 * sigma + 0.5) + 1`), K1 = 0.01, K2 = 0.03, the images reflect-padded by 5
  pixels so the SSIM map has the input's size, variances clamped at 0, and the map averaged
  over channels and pixels. Evaluated in float64 with a separable window.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

__all__ = ["psnr", "psnr_per_image", "ssim", "ssim_per_image"]


def _unit(x: torch.Tensor) -> torch.Tensor:
    return (x.detach().double().clamp(-1, 1) + 1) / 2


def psnr_per_image(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """PSNR in dB `(B,)` of image batches `(B, C, H, W)` in [-1, 1] (both clamped)."""
    a, b = _unit(x), _unit(y)
    mse = ((a - b) ** 2).flatten(1).mean(1).clamp_min(1e-10)  # (B,)
    return 10 * torch.log10(1.0 / mse)


def psnr(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean PSNR in dB over a batch (see `psnr_per_image`)."""
    return psnr_per_image(x, y).mean()


def _gaussian_window(sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    k = 2 * int(3.5 * sigma + 0.5) + 1
    d = torch.arange(k, dtype=dtype, device=device) - (k - 1) / 2  # -5 .. 5 for sigma 1.5
    g = torch.exp(-0.5 * (d / sigma) ** 2)
    return g / g.sum()  # (k,)


def ssim_per_image(
    x: torch.Tensor, y: torch.Tensor, sigma: float = 1.5, k1: float = 0.01, k2: float = 0.03
) -> torch.Tensor:
    """SSIM `(B,)` of image batches `(B, C, H, W)` in [-1, 1] (see the module docstring)."""
    if x.shape != y.shape or x.ndim != 4:
        raise ValueError(f"SSIM needs two (B, C, H, W) batches, got {x.shape} and {y.shape}")
    a, b = _unit(x), _unit(y)
    bsz, c, h, w = a.shape
    g = _gaussian_window(sigma, a.dtype, a.device)
    pad = (g.numel() - 1) // 2
    if min(h, w) <= pad:
        raise ValueError(f"SSIM needs images larger than {pad} pixels, got {h}x{w}")
    stack = torch.cat((a, b, a * a, b * b, a * b))  # (5B, C, H, W)
    stack = F.pad(stack, (pad, pad, pad, pad), mode="reflect")
    stack = stack.reshape(5 * bsz * c, 1, h + 2 * pad, w + 2 * pad)
    stack = F.conv2d(stack, g.view(1, 1, -1, 1))  # vertical pass: (5BC, 1, H, W + 2p)
    stack = F.conv2d(stack, g.view(1, 1, 1, -1))  # horizontal pass: (5BC, 1, H, W)
    mu_a, mu_b, e_aa, e_bb, e_ab = stack.reshape(5, bsz, c, h, w)
    var_a = (e_aa - mu_a**2).clamp_min(0)
    var_b = (e_bb - mu_b**2).clamp_min(0)
    cov = e_ab - mu_a * mu_b
    c1, c2 = k1**2, k2**2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return (num / den).flatten(1).mean(1)  # (B,)


def ssim(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """Mean SSIM over a batch (see `ssim_per_image`)."""
    return ssim_per_image(x, y).mean()
