"""Conditioning stages: turn a condition into the token prefix of the second-stage transformer.

"Taming Transformers" (Esser et al., CVPR 2021), section 3.2 ("Conditioned Synthesis"): the
condition is tokenised and prepended to the image tokens. Every stage exposes the original
interface `encode(c) -> (quant_c, loss_or_None, (None, None, indices))`.

- `SOSProvider`: unconditional models, one start token (shares the image vocabulary).
- `Labelator`: class-conditional models, the class id is the token (shares the vocabulary).
- `CoordStage`: coordinate maps in [0, 1], area-downsampled and quantised to `n_embed` levels.
- `DummyCondStage`: the dataset already provides token ids (scene layouts).
Spatial conditions (segmentation, depth) use a frozen `VQModel`/`VQSegmentationModel`.

For sampling, each stage here prepares its own condition (`condition_kind` and
`prepare_condition(cond, n, device, size)`): what a user passes (nothing, class ids, token
lists, a map) is checked and turned into what `encode` takes. Stages without these (the VQ
models) take `(1 or n, C, H, W)` maps; `Net2NetTransformer.prepare_condition` asks the stage.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from taming.config import ConfigError
from taming.quantize.base import QuantizeInfo, QuantizeOutput

__all__ = ["CoordStage", "DummyCondStage", "Labelator", "SOSProvider", "coordinate_map"]


def coordinate_map(size: tuple[int, int]) -> torch.Tensor:
    """The FacesHQ coordinate condition of an `(H, W)` image: `arange(H*W) / (H*W)`,
    `(1, 1, H, W)` in [0, 1) (raster position of each pixel)."""
    H, W = size
    return (torch.arange(H * W, dtype=torch.float32) / (H * W)).reshape(1, 1, H, W)


def _check_rows(rows: int, n: int, what: str) -> None:
    if rows not in (1, n):
        raise ConfigError(f"give 1 or {n} {what}, got {rows}")


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

    condition_kind = "none"

    def prepare_condition(
        self, cond: Any, n: int, device: torch.device, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """No condition: the SOS token `(1, 1)`."""
        if cond is not None:
            raise ConfigError("the model is unconditional: it takes no condition or classes")
        return torch.full((1, 1), int(self.sos_token), dtype=torch.long, device=device)

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

    condition_kind = "class"

    def prepare_condition(
        self, cond: Any, n: int, device: torch.device, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Class ids (an int, or `n` of them) -> checked tokens `(1 or n, 1)`."""
        if cond is None:
            raise ConfigError(
                f"the model is class-conditional: give class ids in [0, {self.n_classes})"
            )
        ids = torch.as_tensor(cond, dtype=torch.long, device=device).reshape(-1)
        _check_rows(ids.numel(), n, "class ids")
        bad = [int(i) for i in ids.tolist() if not 0 <= int(i) < self.n_classes]
        if bad:
            raise ConfigError(
                f"class id {bad[0]} is out of range: the model has {self.n_classes} classes"
            )
        return ids[:, None]

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

    condition_kind = "spatial"
    makes_own_condition = True

    def prepare_condition(
        self, cond: Any, n: int, device: torch.device, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """A coordinate map `(1 or n, 1, H, W)`; by default that of an image of `size`."""
        if cond is None:
            if size is None:
                raise ConfigError("a coordinate-conditioned model needs the sample size")
            cond = coordinate_map(size)
        c = torch.as_tensor(cond).to(device)
        if c.ndim != 4:
            raise ConfigError(f"a coordinate condition is a (B, 1, H, W) map, got {tuple(c.shape)}")
        _check_rows(c.shape[0], n, "conditions")
        return c.float()

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

    condition_kind = "tokens"

    def prepare_condition(
        self, cond: Any, n: int, device: torch.device, size: tuple[int, int] | None = None
    ) -> torch.Tensor:
        """Layout token ids `(L,)` or `(1 or n, L)` -> `(1 or n, L)`."""
        if cond is None:
            raise ConfigError(
                f"the model is conditioned on '{self.conditional_key}' tokens: give a condition"
            )
        c = torch.as_tensor(cond).to(device)
        c = c[None] if c.ndim == 1 else c
        if c.ndim != 2 or c.dtype.is_floating_point or c.shape[0] not in (1, n):
            raise ConfigError(
                f"layout conditions are (1 or {n}, L) token ids, got {c.dtype} {tuple(c.shape)}"
            )
        return c.long()

    def encode(self, c: torch.Tensor) -> QuantizeOutput:
        return QuantizeOutput(c, None, QuantizeInfo(None, None, c))

    def decode(self, c: torch.Tensor) -> torch.Tensor:
        return c

    def to_rgb(self, c: torch.Tensor) -> torch.Tensor:
        return c
