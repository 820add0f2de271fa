"""Convolutional building blocks of the VQGAN autoencoder (DDPM-style ResNet blocks).

From "Taming Transformers for High-Resolution Image Synthesis" (Esser et al., CVPR 2021), whose
autoencoder reuses the blocks of "Denoising Diffusion Probabilistic Models" (Ho et al., 2020).
Parameter names match the original (`norm1`, `conv1`, `norm2`, `conv2`, `nin_shortcut`,
`downsample.conv`, `upsample.conv`) so original checkpoints load strictly.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from taming.modules.fast import conv_forward

__all__ = ["Downsample", "Normalize", "ResnetBlock", "Upsample", "nonlinearity"]


def Normalize(in_channels: int) -> nn.GroupNorm:
    """GroupNorm with 32 groups and eps 1e-6, as in the original."""
    return nn.GroupNorm(num_groups=32, num_channels=in_channels, eps=1e-6, affine=True)


def nonlinearity(x: torch.Tensor, inplace: bool = False) -> torch.Tensor:
    """Swish. With autograd: computed literally as x * sigmoid(x), the original's arithmetic.

    NOTE: the fused `F.silu` kernel differs from the literal product in the last ulp, and the
    adaptive GAN weight (a ratio of gradient norms through ReLU/max-pool networks) amplifies
    such differences past 1e-5, so training keeps the original's arithmetic. Without autograd
    (inference) the fused kernel runs, in place when `inplace` (the caller passes a fresh
    tensor); outputs then agree with the original to ~1e-6.
    """
    if torch.is_grad_enabled() and x.requires_grad:
        return x * torch.sigmoid(x)
    return F.silu(x, inplace=inplace)


class Upsample(nn.Module):
    """Nearest-neighbour 2x upsampling, optionally followed by a 3x3 convolution."""

    def __init__(self, in_channels: int, with_conv: bool) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        if self.with_conv:
            x = conv_forward(self.conv, x)
        return x


class Downsample(nn.Module):
    """2x downsampling: a stride-2 3x3 convolution after asymmetric zero padding (0, 1, 0, 1).

    The asymmetric padding (nothing left/top, one pixel right/bottom) is the original's and must
    be kept for checkpoint parity. Without conv: 2x2 average pooling.
    """

    def __init__(self, in_channels: int, with_conv: bool) -> None:
        super().__init__()
        self.with_conv = with_conv
        if with_conv:
            self.conv = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.with_conv:
            return conv_forward(self.conv, F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))
        return F.avg_pool2d(x, kernel_size=2, stride=2)


class ResnetBlock(nn.Module):
    """Pre-activation residual block: GN-swish-conv, GN-swish-dropout-conv, plus shortcut.

    Args:
        in_channels: input channels.
        out_channels: output channels (defaults to `in_channels`).
        conv_shortcut: use a 3x3 conv (`conv_shortcut`) instead of a 1x1 (`nin_shortcut`) when
            the channel count changes.
        dropout: dropout probability before the second conv.
        temb_channels: size of an optional timestep embedding (0 in the autoencoder).
    """

    def __init__(
        self,
        *,
        in_channels: int,
        out_channels: int | None = None,
        conv_shortcut: bool = False,
        dropout: float = 0.0,
        temb_channels: int = 0,
    ) -> None:
        super().__init__()
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.use_conv_shortcut = conv_shortcut

        self.norm1 = Normalize(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if temb_channels > 0:
            self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = Normalize(out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = nn.Conv2d(out_channels, out_channels, kernel_size=3, stride=1, padding=1)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = nn.Conv2d(in_channels, out_channels, 3, stride=1, padding=1)
            else:
                self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, stride=1, padding=0)

    def forward(self, x: torch.Tensor, temb: torch.Tensor | None = None) -> torch.Tensor:
        h = conv_forward(self.conv1, nonlinearity(self.norm1(x), inplace=True))
        if temb is not None:
            h = h + self.temb_proj(nonlinearity(temb))[:, :, None, None]
        h = conv_forward(self.conv2, self.dropout(nonlinearity(self.norm2(h), inplace=True)))
        if self.in_channels != self.out_channels:
            shortcut = self.conv_shortcut if self.use_conv_shortcut else self.nin_shortcut
            x = conv_forward(shortcut, x)
        return h.add_(x)  # = x + h, into the fresh conv output (conv backward keeps no output)
