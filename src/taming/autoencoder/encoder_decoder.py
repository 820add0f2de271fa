"""Convolutional encoder and decoder of VQGAN.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021),
section 3.2. Both take the original `ddconfig` keys as keyword arguments, so `Encoder(**ddconfig)`
and `Decoder(**ddconfig)` work with the original YAML files and unknown keys raise. Module names
and registration order follow the original (`conv_in`, `down.{i}.block/attn/downsample`,
`mid.block_1/attn_1/block_2`, `up.{i}` indexed by level, `norm_out`, `conv_out`), so original
state dicts load strictly.

Shapes (f = 2 ** (len(ch_mult) - 1)): Encoder (B, in_channels, H, W) -> (B, z_channels[*2], H/f,
W/f); Decoder (B, z_channels, h, w) -> (B, out_ch, h*f, w*f). Attention placement depends on the
configured `resolution`, not on the input size; any input whose sides are multiples of f works.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import torch
from torch import nn

from taming.modules.attention import AttnBlock
from taming.modules.fast import conv_forward
from taming.modules.resnet import Downsample, Normalize, ResnetBlock, Upsample, nonlinearity

logger = logging.getLogger(__name__)

__all__ = ["DDCONFIG_KEYS", "Decoder", "Encoder"]

DDCONFIG_KEYS = (
    "ch",
    "out_ch",
    "ch_mult",
    "num_res_blocks",
    "attn_resolutions",
    "dropout",
    "resamp_with_conv",
    "in_channels",
    "resolution",
    "z_channels",
    "double_z",
    "give_pre_end",
)


class Encoder(nn.Module):
    """Downsampling ResNet encoder with attention at the configured resolutions.

    Args:
        ch: base channel count.
        ch_mult: per-level channel multipliers; `len(ch_mult) - 1` downsamplings.
        num_res_blocks: ResNet blocks per level.
        attn_resolutions: nominal feature resolutions that get self-attention.
        dropout: dropout inside the ResNet blocks.
        resamp_with_conv: strided conv (True) or average pooling (False) for downsampling.
        in_channels: image channels.
        resolution: nominal input resolution (decides where attention goes).
        z_channels: latent channels.
        double_z: output 2 * z_channels (mean and log-variance in KL autoencoders).
        out_ch: accepted so a whole `ddconfig` can be passed; unused by the encoder.
        give_pre_end: accepted so a whole `ddconfig` can be passed; unused by the encoder.
    """

    def __init__(
        self,
        *,
        ch: int,
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        in_channels: int,
        resolution: int,
        z_channels: int,
        ch_mult: Sequence[int] = (1, 2, 4, 8),
        dropout: float = 0.0,
        resamp_with_conv: bool = True,
        double_z: bool = True,
        out_ch: int | None = None,
        give_pre_end: bool = False,
    ) -> None:
        super().__init__()
        ch_mult = tuple(ch_mult)
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.resolution = resolution
        self.in_channels = in_channels

        self.conv_in = nn.Conv2d(in_channels, ch, kernel_size=3, stride=1, padding=1)

        curr_res = resolution
        in_ch_mult = (1,) + ch_mult
        self.down = nn.ModuleList()
        block_in = ch
        for i_level in range(self.num_resolutions):
            block = nn.ModuleList()
            attn = nn.ModuleList()
            block_in = ch * in_ch_mult[i_level]
            block_out = ch * ch_mult[i_level]
            for _ in range(num_res_blocks):
                block.append(
                    ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=dropout)
                )
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            down = nn.Module()
            down.block = block
            down.attn = attn
            if i_level != self.num_resolutions - 1:
                down.downsample = Downsample(block_in, resamp_with_conv)
                curr_res = curr_res // 2
            self.down.append(down)

        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)

        self.norm_out = Normalize(block_in)
        z_out = 2 * z_channels if double_z else z_channels
        self.conv_out = nn.Conv2d(block_in, z_out, kernel_size=3, stride=1, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # runs in its weights' dtype (bf16 after `set_first_stage_dtype`), returns x's dtype
        h = conv_forward(self.conv_in, x.to(self.conv_in.weight.dtype))
        for i_level, down in enumerate(self.down):
            for i_block, block in enumerate(down.block):
                h = block(h)
                if len(down.attn) > 0:
                    h = down.attn[i_block](h)
            if i_level != self.num_resolutions - 1:
                h = down.downsample(h)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return conv_forward(self.conv_out, nonlinearity(self.norm_out(h), inplace=True)).to(x.dtype)


class Decoder(nn.Module):
    """Upsampling ResNet decoder, mirror of `Encoder` with `num_res_blocks + 1` blocks per level.

    Args:
        ch, ch_mult, num_res_blocks, attn_resolutions, dropout, resamp_with_conv, resolution,
        z_channels: as for `Encoder`.
        out_ch: output channels.
        give_pre_end: return the features before `norm_out`/`conv_out`.
        in_channels: accepted so a whole `ddconfig` can be passed; unused by the decoder.
        double_z: accepted so a whole `ddconfig` can be passed; unused by the decoder.

    There is no output activation: outputs are unbounded (clamp to [-1, 1] for display).
    """

    def __init__(
        self,
        *,
        ch: int,
        out_ch: int,
        num_res_blocks: int,
        attn_resolutions: Sequence[int],
        resolution: int,
        z_channels: int,
        ch_mult: Sequence[int] = (1, 2, 4, 8),
        dropout: float = 0.0,
        resamp_with_conv: bool = True,
        give_pre_end: bool = False,
        in_channels: int | None = None,
        double_z: bool = True,
    ) -> None:
        super().__init__()
        ch_mult = tuple(ch_mult)
        self.ch = ch
        self.num_resolutions = len(ch_mult)
        self.num_res_blocks = num_res_blocks
        self.resolution = resolution
        self.give_pre_end = give_pre_end

        block_in = ch * ch_mult[-1]
        curr_res = resolution // 2 ** (self.num_resolutions - 1)
        self.z_shape = (1, z_channels, curr_res, curr_res)
        logger.debug(
            "Decoder: z of shape %s = %d dimensions", self.z_shape, z_channels * curr_res**2
        )

        self.conv_in = nn.Conv2d(z_channels, block_in, kernel_size=3, stride=1, padding=1)

        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(in_channels=block_in, out_channels=block_in, dropout=dropout)

        up_levels = []
        for i_level in reversed(range(self.num_resolutions)):
            block = nn.ModuleList()
            attn = nn.ModuleList()
            block_out = ch * ch_mult[i_level]
            for _ in range(num_res_blocks + 1):
                block.append(
                    ResnetBlock(in_channels=block_in, out_channels=block_out, dropout=dropout)
                )
                block_in = block_out
                if curr_res in attn_resolutions:
                    attn.append(AttnBlock(block_in))
            up = nn.Module()
            up.block = block
            up.attn = attn
            if i_level != 0:
                up.upsample = Upsample(block_in, resamp_with_conv)
                curr_res = curr_res * 2
            up_levels.insert(0, up)  # up[i] is level i, as in the original state dicts
        self.up = nn.ModuleList(up_levels)

        self.norm_out = Normalize(block_in)
        self.conv_out = nn.Conv2d(block_in, out_ch, kernel_size=3, stride=1, padding=1)

    def forward_features(self, z: torch.Tensor) -> torch.Tensor:
        """Everything up to (excluding) `norm_out` -> swish -> `conv_out`, in the weights' dtype."""
        self.last_z_shape = z.shape
        h = conv_forward(self.conv_in, z.to(self.conv_in.weight.dtype))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for i_level in reversed(range(self.num_resolutions)):
            up = self.up[i_level]
            for i_block, block in enumerate(up.block):
                h = block(h)
                if len(up.attn) > 0:
                    h = up.attn[i_block](h)
            if i_level != 0:
                h = up.upsample(h)
        return h

    def forward_head(self, h: torch.Tensor) -> torch.Tensor:
        """The input of the last conv: swish(norm_out(h)) (used by the adaptive GAN weight)."""
        return nonlinearity(self.norm_out(h), inplace=True)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.forward_features(z)
        if self.give_pre_end:
            return h.to(z.dtype)
        return conv_forward(self.conv_out, self.forward_head(h)).to(z.dtype)
