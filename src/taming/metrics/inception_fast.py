"""Inference form of the FID Inception-v3: the same function as `FIDInceptionV3`, fewer passes.

Three exact rewrites (equal in exact arithmetic; in float32 the features agree with the
reference form to ~1e-6 relative):

1. BatchNorm folded into the preceding convolution (`w * g / sqrt(v + eps)`, bias
   `b - m * g / sqrt(v + eps)`), and the input scaling `(x - 128) / 128` folded into the first
   convolution (it has no padding, so this is exact at the borders too);
2. the 1x1 convolutions that read a block's input are merged into one convolution whose output
   channels are split afterwards;
3. the average-pool branch `conv1x1(avgpool(x))` is computed as `avgpool(conv1x1(x))`: both
   are linear and the pool divides by a per-position count, so they commute; the 1x1 joins
   the merged convolution of 2 and the pool runs on 32-192 channels instead of 192-2048.
   (Mixed_7c pools with max, which does not commute: its pool branch stays as it is.)

Activations are channels-last (oneDNN runs the convolutions without layout reorders).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taming.metrics.inception import (
    BasicConv2d,
    FIDInceptionV3,
    InceptionA,
    InceptionB,
    InceptionC,
    InceptionD,
    InceptionE,
    _avg3,
    tf1_bilinear_resize,
)

__all__ = ["FastInceptionV3"]


def _folded(layers: list[BasicConv2d]) -> tuple[Tensor, Tensor]:
    """BatchNorm-folded weights `(sum C_out, C_in, kh, kw)` and biases of parallel convs."""
    ws, bs = [], []
    for layer in layers:
        bn = layer.bn
        s = bn.weight.double() / torch.sqrt(bn.running_var.double() + bn.eps)  # (C_out,)
        ws.append(layer.conv.weight.double() * s[:, None, None, None])
        bs.append(bn.bias.double() - bn.running_mean.double() * s)
    return torch.cat(ws), torch.cat(bs)


class _Conv(nn.Module):
    """A folded conv (+ bias), optionally followed by ReLU."""

    def __init__(self, layers: BasicConv2d | list[BasicConv2d], relu: bool = True) -> None:
        super().__init__()
        layers = layers if isinstance(layers, list) else [layers]
        w, b = _folded(layers)
        conv = layers[0].conv
        self.stride, self.padding = conv.stride, conv.padding
        self.register_buffer("weight", w.float())
        self.register_buffer("bias", b.float())
        self.relu = relu

    def forward(self, x: Tensor) -> Tensor:
        y = F.conv2d(x, self.weight, self.bias, self.stride, self.padding)
        return F.relu(y, inplace=True) if self.relu else y


class _Chain(nn.Module):
    def __init__(self, *layers: BasicConv2d) -> None:
        super().__init__()
        self.layers = nn.ModuleList(_Conv(layer) for layer in layers)

    def forward(self, x: Tensor) -> Tensor:
        for layer in self.layers:
            x = layer(x)
        return x


class _Block(nn.Module):
    """One mixed block: a merged 1x1 `head` on the input, split into branches.

    Args:
        head: the 1x1 convolutions reading the input, in output order.
        widths: their output widths.
        tails: per head slice, the convolutions that follow (empty: the slice is an output).
        pool_head: the last head slice is an avg-pool branch (pooled after the conv).
        extra: outputs computed from the block input itself (stride-2 convs, max pools).
        order: concatenation order of the outputs, indices into `heads + extras`.
    """

    def __init__(self, head, widths, tails, pool_head, extra, order) -> None:
        super().__init__()
        self.head = _Conv(head, relu=False)
        self.widths = widths
        self.tails = nn.ModuleList(tails)
        self.pool_head = pool_head
        self.extra = nn.ModuleList(extra)
        self.order = order

    def forward(self, x: Tensor) -> Tensor:
        h = self.head(x)  # (B, sum(widths), H, W)
        parts = list(torch.split(h, self.widths, dim=1))
        outs = []
        for i, (p, tail) in enumerate(zip(parts, self.tails)):
            if self.pool_head and i == len(parts) - 1:
                outs.append(F.relu(_avg3(p), inplace=True))
            else:
                outs.append(tail(F.relu(p)))
        outs += [e(x) for e in self.extra]
        return torch.cat([outs[i] for i in self.order], 1)


class _Split(nn.Module):
    """`cat(a(x), b(x))` of the 1x3 / 3x1 pair of an E block."""

    def __init__(self, a: BasicConv2d, b: BasicConv2d) -> None:
        super().__init__()
        self.a, self.b = _Conv(a), _Conv(b)

    def forward(self, x: Tensor) -> Tensor:
        return torch.cat((self.a(x), self.b(x)), 1)


class _MaxPool(nn.Module):
    def __init__(self, stride: int, padding: int = 0) -> None:
        super().__init__()
        self.stride, self.padding = stride, padding

    def forward(self, x: Tensor) -> Tensor:
        return F.max_pool2d(x, 3, stride=self.stride, padding=self.padding)


class _PoolConv(nn.Module):
    """Mixed_7c's pool branch: max pool, then its 1x1."""

    def __init__(self, conv: BasicConv2d) -> None:
        super().__init__()
        self.conv = _Conv(conv)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv(F.max_pool2d(x, 3, stride=1, padding=1))


def _identity() -> nn.Module:
    return nn.Identity()


def _fast_block(m: nn.Module) -> nn.Module:
    if isinstance(m, InceptionA):
        head = [m.branch1x1, m.branch5x5_1, m.branch3x3dbl_1, m.branch_pool]
        tails = [_identity(), _Chain(m.branch5x5_2), _Chain(m.branch3x3dbl_2, m.branch3x3dbl_3)]
        widths = [c.conv.out_channels for c in head]
        return _Block(head, widths, [*tails, _identity()], True, [], [0, 1, 2, 3])
    if isinstance(m, InceptionB):
        head = [m.branch3x3dbl_1]
        tails = [_Chain(m.branch3x3dbl_2, m.branch3x3dbl_3)]
        extra = [_Chain(m.branch3x3), _MaxPool(2)]
        return _Block(head, [64], tails, False, extra, [1, 0, 2])
    if isinstance(m, InceptionC):
        head = [m.branch1x1, m.branch7x7_1, m.branch7x7dbl_1, m.branch_pool]
        tails = [
            _identity(),
            _Chain(m.branch7x7_2, m.branch7x7_3),
            _Chain(m.branch7x7dbl_2, m.branch7x7dbl_3, m.branch7x7dbl_4, m.branch7x7dbl_5),
            _identity(),
        ]
        widths = [c.conv.out_channels for c in head]
        return _Block(head, widths, tails, True, [], [0, 1, 2, 3])
    if isinstance(m, InceptionD):
        head = [m.branch3x3_1, m.branch7x7x3_1]
        tails = [
            _Chain(m.branch3x3_2),
            _Chain(m.branch7x7x3_2, m.branch7x7x3_3, m.branch7x7x3_4),
        ]
        return _Block(head, [192, 192], tails, False, [_MaxPool(2)], [0, 1, 2])
    if isinstance(m, InceptionE):
        b3 = nn.Sequential(_Split(m.branch3x3_2a, m.branch3x3_2b))
        dbl = nn.Sequential(_Conv(m.branch3x3dbl_2), _Split(m.branch3x3dbl_3a, m.branch3x3dbl_3b))
        if m.pool == "avg":
            head = [m.branch1x1, m.branch3x3_1, m.branch3x3dbl_1, m.branch_pool]
            tails = [_identity(), b3, dbl, _identity()]
            return _Block(head, [320, 384, 448, 192], tails, True, [], [0, 1, 2, 3])
        head = [m.branch1x1, m.branch3x3_1, m.branch3x3dbl_1]
        tails = [_identity(), b3, dbl]
        extra = [_PoolConv(m.branch_pool)]
        return _Block(head, [320, 384, 448], tails, False, extra, [0, 1, 2, 3])
    raise TypeError(f"not an Inception block: {type(m).__name__}")


class FastInceptionV3(nn.Module):
    """`FIDInceptionV3` rewritten for inference (see the module docstring); same interface.

    Args:
        ref: the reference network with its weights (not modified).
    """

    def __init__(self, ref: FIDInceptionV3) -> None:
        super().__init__()
        self.input_size = ref.input_size
        with torch.no_grad():
            stem = _Conv(ref.Conv2d_1a_3x3)
            # (x - 128) / 128 folded in: conv(w, x / 128 - 1) = conv(w / 128, x) - sum(w)
            w = stem.weight.double()
            stem.bias.copy_((stem.bias.double() - w.sum((1, 2, 3))).float())
            stem.weight.copy_((w / 128).float())
            self.stem = nn.ModuleList(
                [stem]
                + [
                    _Conv(getattr(ref, n))
                    for n in ("Conv2d_2a_3x3", "Conv2d_2b_3x3", "Conv2d_3b_1x1", "Conv2d_4a_3x3")
                ]
            )
            names = ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c")
            self.blocks = nn.ModuleList(_fast_block(getattr(ref, f"Mixed_{n}")) for n in names)
            self.register_buffer("fc_weight_t", ref.fc.weight.detach().t().contiguous())
        self.requires_grad_(False)
        self.eval()

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 images `(B, 3, H, W)` -> `(pool3 (B, 2048), logits_unbiased (B, 1008))`."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected uint8 images (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        s = self.input_size
        x = tf1_bilinear_resize(images.float(), (s, s))  # (B, 3, 299, 299), 0..255
        x = x.contiguous(memory_format=torch.channels_last)
        c1, c2, c3, c4, c5 = self.stem
        x = c3(c2(c1(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 73, 73)
        x = c5(c4(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        for block in self.blocks:
            x = block(x)  # ... -> (B, 2048, 8, 8)
        pool3 = x.mean((2, 3))  # (B, 2048)
        return pool3, pool3 @ self.fc_weight_t
