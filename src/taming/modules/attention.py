"""Single-head spatial self-attention (non-local block) of the VQGAN autoencoder.

"Non-local Neural Networks" (Wang et al., CVPR 2018), as used in the DDPM UNet and in
"Taming Transformers" (Esser et al., 2021). The original computes softmax(q^T k / sqrt(C)) v with
explicit batched matmuls; here the same math runs through `scaled_dot_product_attention`
(one head, sequence H*W, head dim C, default scale 1/sqrt(C), no mask). Parameter names `norm`,
`q`, `k`, `v`, `proj_out` (1x1 convolutions) match the original checkpoints.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from taming.modules.resnet import Normalize

__all__ = ["AttnBlock"]


class AttnBlock(nn.Module):
    """x + proj_out(attention(norm(x))) over all H*W positions."""

    def __init__(self, in_channels: int) -> None:
        super().__init__()
        self.in_channels = in_channels
        self.norm = Normalize(in_channels)
        self.q = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.k = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.v = nn.Conv2d(in_channels, in_channels, kernel_size=1)
        self.proj_out = nn.Conv2d(in_channels, in_channels, kernel_size=1)

    def _qkv(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        # one fused 1x1 projection instead of three: same weights, same math
        c = self.in_channels
        weight = torch.cat([self.q.weight, self.k.weight, self.v.weight]).view(3 * c, c)
        bias = torch.cat([self.q.bias, self.k.bias, self.v.bias])
        b, _, hh, ww = h.shape
        tokens = h.flatten(2).transpose(1, 2)  # (B, HW, C)
        qkv = F.linear(tokens, weight, bias)  # (B, HW, 3C)
        q, k, v = qkv.unsqueeze(1).chunk(3, dim=-1)  # each (B, 1, HW, C)
        return q, k, v

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        q, k, v = self._qkv(self.norm(x))
        out = F.scaled_dot_product_attention(q, k, v)  # (B, 1, HW, C)
        out = F.linear(out.squeeze(1), self.proj_out.weight.view(c, c), self.proj_out.bias)
        out = out.transpose(1, 2).reshape(b, c, hh, ww)  # (B, HW, C) -> (B, C, H, W)
        return x + out
