"""Conditioning stages: turn a condition into the token prefix of the second-stage transformer.

"Taming Transformers" (Esser et al., CVPR 2021), section 3.2 ("Conditioned Synthesis"): the
condition is tokenised and prepended to the image tokens. Every stage exposes the original
interface `encode(c) -> (quant_c, loss_or_None, (None, None, indices))`.

- `SOSProvider`: unconditional models, one start token (shares the image vocabulary).
- `Labelator`: class-conditional models, the class id is the token (shares the vocabulary).
- `CoordStage`: coordinate maps in [0, 1], area-downsampled and quantised to `n_embed` levels.
- `DummyCondStage`: the dataset already provides token ids (scene layouts).
Spatial conditions (segmentation, depth) use a frozen `VQModel`/`VQSegmentationModel`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput

__all__ = ["CoordStage", "DummyCondStage", "Labelator", "SOSProvider"]


class SOSProvider(nn.Module):
    """Unconditional: a single start-of-sequence token `sos_token` per sample.

    Args:
        sos_token: token id of the start token (the original uses 0, an image-code id).
        quantize_interface: return the `(quant, loss, info)` triple (else only the tokens).
    """

    def __init__(self, sos_token: int, quantize_interface: bool = True) -> None:
        super().__init__()
        self.sos_token = sos_token
        self.quantize_interface = quantize_interface

    def encode(self, x: torch.Tensor) -> QuantizeOutput | torch.Tensor:
        c = torch.full((x.shape[0], 1), self.sos_token, dtype=torch.long, device=x.device)
        if self.quantize_interface:
            return QuantizeOutput(c, None, QuantizeInfo(None, None, c))
        return c


class Labelator(nn.Module):
    """Class-conditional: class id `k` becomes token `k` (requires `vocab_size > n_classes`).

    Args:
        n_classes: number of classes.
        quantize_interface: return the `(quant, loss, info)` triple (else only the tokens).
    """

    def __init__(self, n_classes: int, quantize_interface: bool = True) -> None:
        super().__init__()
        self.n_classes = n_classes
        self.quantize_interface = quantize_interface

    def encode(self, c: torch.Tensor) -> QuantizeOutput | torch.Tensor:
        c = torch.as_tensor(c)
        if c.ndim != 1:
            c = c.reshape(c.shape[0])
        if c.numel() and (int(c.min()) < 0 or int(c.max()) >= self.n_classes):
            raise ValueError(f"class labels must lie in [0, {self.n_classes}), got {c.tolist()}")
        c = c[:, None]  # (B, 1)
        if self.quantize_interface:
            return QuantizeOutput(c, None, QuantizeInfo(None, None, c.long()))
        return c


class CoordStage(nn.Module):
    """Coordinate maps (B, 1, H, W) in [0, 1] -> `round(n_embed * area_downsample(c))` tokens.

    Args:
        n_embed: number of quantisation levels (the value `n_embed` itself is clamped to
            `n_embed - 1`, a fix: the original could emit an out-of-vocabulary token for 1.0).
        down_factor: spatial downsampling factor (the first stage's `f`).
    """

    def __init__(self, n_embed: int, down_factor: int) -> None:
        super().__init__()
        self.n_embed = n_embed
        self.down_factor = down_factor

    def encode(self, c: torch.Tensor) -> QuantizeOutput:
        if c.ndim != 4 or c.shape[1] != 1:
            raise ValueError(f"CoordStage expects (B, 1, H, W) maps, got {tuple(c.shape)}")
        if float(c.min()) < 0.0 or float(c.max()) > 1.0:
            raise ValueError("CoordStage expects coordinates in [0, 1]")
        h, w = c.shape[2] // self.down_factor, c.shape[3] // self.down_factor
        c = F.interpolate(c, size=(h, w), mode="area").clamp(0.0, 1.0)
        c_quant = torch.round(self.n_embed * c).clamp(max=self.n_embed - 1)
        c_ind = c_quant.to(dtype=torch.long)
        return QuantizeOutput(c_quant, None, QuantizeInfo(None, None, c_ind))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        c = c / self.n_embed
        return F.interpolate(c, scale_factor=self.down_factor, mode="nearest")


class DummyCondStage(nn.Module):
    """The dataset already provides the tokens (e.g. `objects_bbox` layouts).

    Args:
        conditional_key: batch key of the tokens (documentation; the transformer's
            `cond_stage_key` selects the batch entry).
    """

    def __init__(self, conditional_key: str) -> None:
        super().__init__()
        self.conditional_key = conditional_key

    def encode(self, c: torch.Tensor) -> QuantizeOutput:
        return QuantizeOutput(c, None, QuantizeInfo(None, None, c))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return c

    def to_rgb(self, c: torch.Tensor) -> torch.Tensor:
        return c
