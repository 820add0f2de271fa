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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, hh, ww = x.shape
        h = self.norm(x)
        tokens = h.flatten(2).transpose(1, 2)  # (B, HW, C); a free view for channels-last input
        # one fused q/k/v projection instead of three 1x1 convs: same weights, same math
        weight = torch.cat([self.q.weight, self.k.weight, self.v.weight]).view(3 * c, c)
        bias = torch.cat([self.q.bias, self.k.bias, self.v.bias])
        q, k, v = F.linear(tokens, weight, bias).unsqueeze(1).chunk(3, dim=-1)  # (B, 1, HW, C)
        out = F.scaled_dot_product_attention(q, k, v).squeeze(1)  # (B, HW, C)
        out = F.linear(out, self.proj_out.weight.view(c, c), self.proj_out.bias)  # (B, HW, C)
        out = out.view(b, hh, ww, c).permute(0, 3, 1, 2)  # (B, C, H, W), channels-last strides
        return x + out
