"""The decode-layout copies of a GPT's Linear weights, for one format and weight version.

`GPT.forward_cached` multiplies with `cpu_matmul.DecodeLinear` copies of the blocks' weights
(fused q/k/v, packed or low-precision formats). Building them costs a pass over every weight,
so they are kept between calls and rebuilt only when a parameter changed: a stamp of every
parameter's version counter and storage notices in-place updates (`load_state_dict`,
optimiser steps) and moves (`.to()`), an identity check notices replaced parameters.
"""

from __future__ import annotations

from torch import nn

from taming.transformer.block import BlockProducts
from taming.transformer.cpu_matmul import DecodeLinear

__all__ = ["DecodeWeights"]


class DecodeWeights:
    """The decode-layout products `forward_cached` uses, for one format and weight version.

    `gpt` is the `GPT` (its `blocks` and `head`). `is_current` compares the stamp (~30 us for
    a 25M-parameter GPT) and, with `check_identity` (`setup_cache`), the parameter objects.
    """

    __slots__ = ("fmt", "params", "stamp", "blocks", "head")

    def __init__(self, gpt: nn.Module, fmt: str | None) -> None:
        self.fmt, self.params = fmt, list(gpt.parameters())
        self.stamp = self._stamp()
        self.blocks = [BlockProducts.of(block, fmt) for block in gpt.blocks]
        self.head = DecodeLinear([gpt.head.weight], None, fmt)

    def _stamp(self) -> tuple:
        return tuple((p._version, p.data_ptr()) for p in self.params)

    def is_current(self, gpt: nn.Module, fmt: str | None, check_identity: bool) -> bool:
        if fmt != self.fmt or self._stamp() != self.stamp:
            return False
        if check_identity:
            params = list(gpt.parameters())
            return len(params) == len(self.params) and all(
                a is b for a, b in zip(params, self.params)
            )
        return True
