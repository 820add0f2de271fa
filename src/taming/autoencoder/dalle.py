"""OpenAI's DALL-E discrete VAE (the `dall_e` package's `Encoder`/`Decoder`), as a first stage.

"Zero-Shot Text-to-Image Generation" (Ramesh et al., ICML 2021). An f8 autoencoder with 8192
codes: the encoder gives logits (B, 8192, H/8, W/8); its code ids are their argmax. The
decoder takes a one-hot map (B, 8192, h, w) and outputs (B, 6, H, W), whose first three
channels are the logits of the pixel means. Pixels are squeezed into [eps, 1 - eps]
(`map_pixels`, eps = 0.1) before encoding and back after decoding (`unmap_pixels`).

Module names and parameter shapes are the package's (`blocks.input.w`,
`blocks.group_1.block_1.res_path.conv_1.w`, ..., `blocks.output.conv.b`), so its pickled
modules convert by a pure key map (`taming.compat.dalle`). Images here are in [-1, 1] as
everywhere in taming: `encode(x)` uses `map_pixels((x + 1) / 2)` and
`decode_code(ids) = 2 * unmap_pixels(sigmoid(out[:, :3])) - 1`.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import nn

from taming.compat.pretrained import PretrainedMixin
from taming.quantize.base import QuantizeInfo, QuantizeOutput

__all__ = ["DalleDecoder", "DalleEncoder", "DalleVAE", "map_pixels", "unmap_pixels"]

LOGIT_EPS = 0.1


def map_pixels(x: torch.Tensor, eps: float = LOGIT_EPS) -> torch.Tensor:
    """[0, 1] -> [eps, 1 - eps]."""
    return (1 - 2 * eps) * x + eps


def unmap_pixels(x: torch.Tensor, eps: float = LOGIT_EPS) -> torch.Tensor:
    """[eps, 1 - eps] -> [0, 1] (clamped)."""
    return torch.clamp((x - eps) / (1 - 2 * eps), 0, 1)


class DalleConv(nn.Module):
    """Square 'same' convolution with parameters named `w` (out, in, kw, kw) and `b` (out,)."""

    def __init__(self, n_in: int, n_out: int, kw: int) -> None:
        super().__init__()
        self.kw = kw
        self.w = nn.Parameter(torch.randn(n_out, n_in, kw, kw) / (n_in * kw**2) ** 0.5)
        self.b = nn.Parameter(torch.zeros(n_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.w, self.b, padding=(self.kw - 1) // 2)


class _Block(nn.Module):
    """Residual block `id_path(x) + post_gain * res_path(x)`, post_gain = 1 / n_layers**2."""

    def __init__(self, n_in: int, n_out: int, n_layers: int, kernels: tuple[int, ...]) -> None:
        super().__init__()
        n_hid = n_out // 4
        self.post_gain = 1 / n_layers**2
        self.id_path = DalleConv(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        chans = (n_in, n_hid, n_hid, n_hid, n_out)
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        for i, kw in enumerate(kernels):
            layers[f"relu_{i + 1}"] = nn.ReLU()
            layers[f"conv_{i + 1}"] = DalleConv(chans[i], chans[i + 1], kw)
        self.res_path = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.id_path(x) + self.post_gain * self.res_path(x)


def _group(blocks: list[nn.Module], resample: tuple[str, nn.Module] | None) -> nn.Sequential:
    layers: OrderedDict[str, nn.Module] = OrderedDict(
        (f"block_{i + 1}", b) for i, b in enumerate(blocks)
    )
    if resample is not None:
        layers[resample[0]] = resample[1]
    return nn.Sequential(layers)


class DalleEncoder(nn.Module):
    """Image (B, input_channels, H, W) in [eps, 1-eps] -> code logits (B, vocab_size, H/8, W/8)."""

    def __init__(
        self,
        group_count: int = 4,
        n_hid: int = 256,
        n_blk_per_group: int = 2,
        input_channels: int = 3,
        vocab_size: int = 8192,
    ) -> None:
        super().__init__()
        n_layers = group_count * n_blk_per_group
        mult = [2**g for g in range(group_count)]  # 1, 2, 4, 8
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["input"] = DalleConv(input_channels, n_hid, 7)
        for g in range(group_count):
            n_in = n_hid * (mult[g - 1] if g else 1)
            blocks = [
                _Block(n_in if i == 0 else n_hid * mult[g], n_hid * mult[g], n_layers, (3, 3, 3, 1))
                for i in range(n_blk_per_group)
            ]
            pool = ("pool", nn.MaxPool2d(kernel_size=2)) if g < group_count - 1 else None
            layers[f"group_{g + 1}"] = _group(blocks, pool)
        out = OrderedDict(relu=nn.ReLU(), conv=DalleConv(n_hid * mult[-1], vocab_size, 1))
        layers["output"] = nn.Sequential(out)
        self.blocks = nn.Sequential(layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.to(self.blocks.input.w.dtype))


class DalleDecoder(nn.Module):
    """One-hot codes (B, vocab_size, h, w) -> (B, 2 * output_channels, 8h, 8w) logits."""

    def __init__(
        self,
        group_count: int = 4,
        n_init: int = 128,
        n_hid: int = 256,
        n_blk_per_group: int = 2,
        output_channels: int = 3,
        vocab_size: int = 8192,
    ) -> None:
        super().__init__()
        n_layers = group_count * n_blk_per_group
        mult = [2 ** (group_count - 1 - g) for g in range(group_count)]  # 8, 4, 2, 1
        layers: OrderedDict[str, nn.Module] = OrderedDict()
        layers["input"] = DalleConv(vocab_size, n_init, 1)
        for g in range(group_count):
            n_in = n_init if g == 0 else n_hid * mult[g - 1]
            blocks = [
                _Block(n_in if i == 0 else n_hid * mult[g], n_hid * mult[g], n_layers, (1, 3, 3, 3))
                for i in range(n_blk_per_group)
            ]
            up = (
                ("upsample", nn.Upsample(scale_factor=2, mode="nearest"))
                if g < group_count - 1
                else None
            )
            layers[f"group_{g + 1}"] = _group(blocks, up)
        out = OrderedDict(relu=nn.ReLU(), conv=DalleConv(n_hid, 2 * output_channels, 1))
        layers["output"] = nn.Sequential(out)
        self.blocks = nn.Sequential(layers)
        self.output_channels = output_channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(x.to(self.blocks.input.w.dtype))


class DalleVAE(PretrainedMixin, nn.Module):
    """The dVAE as a taming first stage: `encode`, `decode`, `decode_code` on [-1, 1] images.

    Args:
        encoder: `DalleEncoder` keyword arguments.
        decoder: `DalleDecoder` keyword arguments.
    """

    def __init__(self, encoder: dict | None = None, decoder: dict | None = None) -> None:
        super().__init__()
        self.encoder = DalleEncoder(**dict(encoder or {}))
        self.decoder = DalleDecoder(**dict(decoder or {}))
        vocab = self.encoder.blocks.output.conv.w.shape[0]
        if self.decoder.blocks.input.w.shape[1] != vocab:
            raise ValueError("encoder and decoder vocab_size differ")
        self.n_embed = self.vocab_size = vocab
        self.embed_dim = vocab  # the decoder's input is the one-hot map itself
        self.downsample_factor = 2 ** (len(self.encoder.blocks) - 3)

    def encode_logits(self, x: torch.Tensor) -> torch.Tensor:
        """x (B, C, H, W) in [-1, 1] -> logits (B, K, H/8, W/8)."""
        return self.encoder(map_pixels((x + 1) / 2))

    def encode(self, x: torch.Tensor) -> QuantizeOutput:
        """x (B, C, H, W) in [-1, 1] -> `(one-hot (B, K, h, w), 0, info)`, ids (B, h, w)."""
        ids = self.encode_logits(x).argmax(dim=1)  # (B, h, w)
        quant = F.one_hot(ids, self.vocab_size).permute(0, 3, 1, 2).float()  # (B, K, h, w)
        zero = torch.zeros((), device=x.device)
        return QuantizeOutput(quant, zero, QuantizeInfo(None, None, ids))

    def decode(self, quant: torch.Tensor) -> torch.Tensor:
        """(B, K, h, w) one-hot (or soft) codes -> image (B, C, 8h, 8w) in [-1, 1]."""
        out = self.decoder(quant)
        x = torch.sigmoid(out[:, : self.decoder.output_channels])
        return 2 * unmap_pixels(x) - 1

    def decode_code(self, code_b: torch.Tensor) -> torch.Tensor:
        """Code ids (B, h, w) -> image (B, C, 8h, 8w) in [-1, 1]."""
        if code_b.ndim != 3:
            raise ValueError(f"decode_code expects ids (B, h, w), got {tuple(code_b.shape)}")
        onehot = F.one_hot(code_b.long(), self.vocab_size).permute(0, 3, 1, 2).float()
        return self.decode(onehot)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        quant, loss, _ = self.encode(x)
        return self.decode(quant), loss
