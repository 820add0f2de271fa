"""Return types shared by the quantizers, in the original `(quant, loss, info)` order.

Named tuples (as in vector-quantize-pytorch) keep `quant, emb_loss, info = vq(h)` and
`info[2]` working while giving names to the fields.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
from torch import nn

__all__ = ["QuantizeInfo", "QuantizeOutput", "RemapMixin"]


class QuantizeInfo(NamedTuple):
    """Third element of a quantizer output: `(perplexity, min_encodings, indices)`."""

    perplexity: torch.Tensor | None
    min_encodings: torch.Tensor | None
    indices: torch.Tensor


class QuantizeOutput(NamedTuple):
    """`(quant, loss, info)` exactly as the original quantizers return them."""

    quant: torch.Tensor
    loss: torch.Tensor
    info: QuantizeInfo


class RemapMixin:
    """Index remapping to a subset of "used" codes (`remap` = path to a `.npy` of code ids).

    The table is a persistent buffer `used`; `re_embed` is the size of the remapped vocabulary
    (`len(used)`, plus one if `unknown_index == "extra"`). Codes outside `used` map to a random
    used position (`"random"`), to the extra token (`"extra"`) or to a fixed index (an int).
    """

    used: torch.Tensor

    def _init_remap(self: nn.Module, n_e: int, remap: str | None, unknown_index: str | int) -> None:
        self.remap = remap
        self.unknown_index = unknown_index
        self.re_embed = n_e
        if remap is None:
            return
        self.register_buffer("used", torch.tensor(np.load(remap)))
        self.re_embed = int(self.used.shape[0])
        if unknown_index == "extra":
            self.unknown_index = self.re_embed
            self.re_embed += 1

    def remap_to_used(self, inds: torch.Tensor) -> torch.Tensor:
        """Map codebook indices (B, ...) to positions in `used`."""
        ishape = inds.shape
        inds = inds.reshape(ishape[0], -1)  # (B, L)
        used = self.used.to(inds)
        match = inds[:, :, None] == used[None, None, ...]  # (B, L, U)
        new = match.int().argmax(-1)
        unknown = match.sum(2) < 1
        if self.unknown_index == "random":
            new[unknown] = torch.randint(
                0, self.re_embed, size=new[unknown].shape, device=new.device
            )
        else:
            new[unknown] = self.unknown_index
        return new.reshape(ishape)

    def unmap_to_all(self, inds: torch.Tensor) -> torch.Tensor:
        """Map positions in `used` back to codebook indices (the extra token maps to `used[0]`)."""
        ishape = inds.shape
        inds = inds.reshape(ishape[0], -1)  # (B, L)
        used = self.used.to(inds)
        if self.re_embed > used.shape[0]:  # extra token
            inds = inds.clone()
            inds[inds >= used.shape[0]] = 0
        back = torch.gather(used[None, :].expand(inds.shape[0], -1), 1, inds)
        return back.reshape(ishape)
