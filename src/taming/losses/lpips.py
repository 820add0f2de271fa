"""LPIPS perceptual distance with a VGG16 trunk.

"The Unreasonable Effectiveness of Deep Features as a Perceptual Metric" (Zhang et al., 2018),
version 0.1 with VGG16, as used by the VQGAN reconstruction loss ("Taming Transformers",
Esser et al., 2021). Parameter names follow the original checkpoints
(`scaling_layer.{shift,scale}`, `net.slice{1..5}.{idx}.{weight,bias}` with torchvision's
`features` indices, `lin{0..4}.model.1.weight`), so `loss.perceptual_loss.*` loads strictly.

Weights are never downloaded: `LPIPS()` reads them from disk (see `taming.losses.weights`) and
raises `WeightsNotFoundError` with instructions if they are missing; `LPIPS(pretrained=False)`
builds the same module with random weights and touches no file (for tests, timing, or loading
a full checkpoint that already contains the trunk and the heads). All parameters are frozen.

NOTE (dropout): each linear head is `Sequential(Dropout(0.5), Conv2d(C, 1, 1))`. `LPIPS` starts
in eval mode (deterministic), but a parent's `.train()` switches the dropout on, exactly as in
the original VQGAN training (Lightning puts the whole model, LPIPS included, in train mode).
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict

import torch
from torch import nn

from taming.losses.weights import (
    VGG16_CONV_INDICES,
    load_lpips_lin_state_dict,
    load_vgg16_features,
    resolve_lpips_lin_weights,
    resolve_vgg16_weights,
)

logger = logging.getLogger(__name__)

__all__ = [
    "LPIPS",
    "NetLinLayer",
    "ScalingLayer",
    "VGG16Features",
    "normalize_tensor",
    "spatial_average",
]

# torchvision VGG16 `features`: conv widths, "M" = 2x2 max-pool.
_VGG16_CFG = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512)
# `features` index ranges of the five slices, ending at relu1_2, relu2_2, relu3_3, relu4_3, relu5_3.
_SLICES = ((0, 4), (4, 9), (9, 16), (16, 23), (23, 30))
LPIPS_CHANNELS = (64, 128, 256, 512, 512)


def normalize_tensor(x: torch.Tensor, eps: float = 1e-10) -> torch.Tensor:
    """Unit-normalise over channels: x / (||x||_2 over dim 1 + eps)."""
    norm_factor = torch.sqrt(torch.sum(x**2, dim=1, keepdim=True))  # (B, 1, H, W)
    return x / (norm_factor + eps)


def spatial_average(x: torch.Tensor, keepdim: bool = True) -> torch.Tensor:
    """Mean over the spatial axes (H, W)."""
    return x.mean([2, 3], keepdim=keepdim)


class ScalingLayer(nn.Module):
    """Maps [-1, 1] images to the VGG input range: (x - shift) / scale, per channel."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("shift", torch.tensor([-0.030, -0.088, -0.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([0.458, 0.448, 0.450])[None, :, None, None])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.shift) / self.scale


class NetLinLayer(nn.Module):
    """LPIPS head: dropout then a bias-free 1x1 conv to one channel (`model.1.weight`).

    Args:
        chn_in: input channels.
        chn_out: output channels.
        use_dropout: put a `Dropout(0.5)` in front (index 0), as LPIPS v0.1 does.
    """

    def __init__(self, chn_in: int, chn_out: int = 1, use_dropout: bool = True) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Dropout()] if use_dropout else []
        layers.append(nn.Conv2d(chn_in, chn_out, 1, stride=1, padding=0, bias=False))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


class VGG16Features(nn.Module):
    """torchvision's VGG16 `features` (up to relu5_3) cut into five slices.

    Child names inside each slice are the original `features` indices, so the keys are
    `slice{k}.{idx}.{weight,bias}` (slice1: convs 0, 2; slice2: 5, 7; slice3: 10, 12, 14;
    slice4: 17, 19, 21; slice5: 24, 26, 28). `forward` returns the five ReLU outputs.
    """

    def __init__(self) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        in_ch = 3
        for v in _VGG16_CFG:
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(in_ch, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                in_ch = v
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))  # index 30, never run
        for k, (start, stop) in enumerate(_SLICES, start=1):
            named = OrderedDict((str(i), layers[i]) for i in range(start, stop))
            self.add_module(f"slice{k}", nn.Sequential(named))

    def conv(self, idx: int) -> nn.Conv2d:
        """The conv at torchvision `features` index `idx`."""
        for k, (start, stop) in enumerate(_SLICES, start=1):
            if start <= idx < stop:
                layer = getattr(self, f"slice{k}")[idx - start]
                if isinstance(layer, nn.Conv2d):
                    return layer
        raise KeyError(f"features[{idx}] is not a conv")

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        h = x
        for k in range(1, 6):
            h = getattr(self, f"slice{k}")(h)
            feats.append(h)  # relu{k}_2 / relu{k}_3: (B, C_k, H / 2^(k-1), W / 2^(k-1))
        return feats


class LPIPS(nn.Module):
    """Learned perceptual distance between two image batches in [-1, 1].

    Args:
        vgg_weights: explicit VGG16 weights file (torchvision `.pth` or `.safetensors`);
            None searches the usual places (`taming.losses.weights.resolve_vgg16_weights`).
        lin_weights: explicit LPIPS linear-head file; None searches the usual places.
        pretrained: load the weights above. False builds random weights without touching
            any file.

    The module starts in eval mode (deterministic); all parameters have requires_grad=False.

    Raises:
        WeightsNotFoundError: `pretrained` and a weights file cannot be found.
    """

    def __init__(
        self,
        vgg_weights: str | os.PathLike | None = None,
        lin_weights: str | os.PathLike | None = None,
        pretrained: bool = True,
    ) -> None:
        super().__init__()
        self.scaling_layer = ScalingLayer()
        self.chns = LPIPS_CHANNELS
        self.net = VGG16Features()
        self.lin0 = NetLinLayer(self.chns[0])
        self.lin1 = NetLinLayer(self.chns[1])
        self.lin2 = NetLinLayer(self.chns[2])
        self.lin3 = NetLinLayer(self.chns[3])
        self.lin4 = NetLinLayer(self.chns[4])
        if pretrained:
            self.load_vgg_weights(resolve_vgg16_weights(vgg_weights))
            self.load_lin_weights(resolve_lpips_lin_weights(lin_weights))
        self.requires_grad_(False)
        self.eval()  # a metric by default; a parent's .train() re-enables the heads' dropout

    @property
    def lins(self) -> tuple[NetLinLayer, ...]:
        return (self.lin0, self.lin1, self.lin2, self.lin3, self.lin4)

    @torch.no_grad()
    def load_vgg_weights(self, path: str | os.PathLike) -> None:
        """Copy VGG16 conv weights from a file (see `load_vgg16_features` for the layouts)."""
        sd = load_vgg16_features(path)
        for idx in VGG16_CONV_INDICES:
            conv = self.net.conv(idx)
            conv.weight.copy_(sd[f"{idx}.weight"])
            conv.bias.copy_(sd[f"{idx}.bias"])
        logger.info("LPIPS: loaded VGG16 weights from %s", path)

    @torch.no_grad()
    def load_lin_weights(self, path: str | os.PathLike) -> None:
        """Copy the five linear heads from a file (keys `lin{k}.model.1.weight`)."""
        sd = load_lpips_lin_state_dict(path)
        for k, lin in enumerate(self.lins):
            lin.model[-1].weight.copy_(sd[f"lin{k}.model.1.weight"])
        logger.info("LPIPS: loaded linear heads from %s", path)

    def _features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """VGG features of a [-1, 1] batch; no graph when x needs no grad (frozen trunk)."""
        if torch.is_grad_enabled() and not x.requires_grad:
            with torch.no_grad():
                return self.net(self.scaling_layer(x))
        return self.net(self.scaling_layer(x))

    def forward(self, input: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """LPIPS(input, target) per sample.

        Args:
            input: (B, 3, H, W) in [-1, 1].
            target: (B, 3, H, W) in [-1, 1].

        Returns:
            (B, 1, 1, 1) distances.
        """
        if input.requires_grad == target.requires_grad:
            # Both (or neither) need a graph: one batched trunk pass for the pair.
            feats = self.net(self.scaling_layer(torch.cat([input, target], dim=0)))
            b = input.shape[0]
            pairs = [(f[:b], f[b:]) for f in feats]
        else:
            # Only one side needs gradients: the other runs without building a graph.
            pairs = list(zip(self._features(input), self._features(target)))
        val = None
        for (f0, f1), lin in zip(pairs, self.lins):
            diff = (normalize_tensor(f0) - normalize_tensor(f1)) ** 2  # (B, C_k, H_k, W_k)
            res = spatial_average(lin(diff), keepdim=True)  # (B, 1, 1, 1)
            val = res if val is None else val + res
        return val
