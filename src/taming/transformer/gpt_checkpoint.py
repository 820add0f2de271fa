"""The original GPT checkpoints' `attn.mask` buffers: what they held, and dropping them.

The original minGPT (`taming.modules.transformer.mingpt`) registered the causal mask of each
block as a state-dict buffer (`blocks.N.attn.mask`); `GPT` builds it on the fly instead, so
those keys are dropped (and checked against the model's mask) before a strict load.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

__all__ = ["DROP_KEY_SUFFIXES", "gpt_checkpoint_filter", "legacy_attn_mask"]

# State-dict keys of the original GPT that this implementation does not register.
DROP_KEY_SUFFIXES: tuple[str, ...] = (".attn.mask",)


def legacy_attn_mask(block_size: int, n_unmasked: int = 0) -> Tensor:
    """The `attn.mask` buffer the original stored: `tril(ones(T, T))` plus an all-ones
    `n_unmasked x n_unmasked` top-left square, float32, shape `(1, 1, T, T)`."""
    mask = torch.tril(torch.ones(block_size, block_size))
    if n_unmasked > 0:
        mask[:n_unmasked, :n_unmasked] = 1
    return mask.view(1, 1, block_size, block_size)


def gpt_checkpoint_filter(
    state_dict: Mapping[str, Tensor], model: nn.Module | None = None
) -> dict[str, Tensor]:
    """Drop the original `blocks.N.attn.mask` buffers so the rest loads with `strict=True`.

    Works on prefixed keys too (e.g. `transformer.blocks.0.attn.mask`).

    Args:
        state_dict: Original (or our) GPT state dict.
        model: If given, every dropped mask is checked against the mask this model applies
            (`block_size`, `n_unmasked`); a mismatch raises, as it would change the outputs.

    Returns:
        A new dict without the mask entries.
    """
    expected = None if model is None else legacy_attn_mask(model.block_size, model.n_unmasked)
    out = {}
    for key, value in state_dict.items():
        if not key.endswith(DROP_KEY_SUFFIXES):
            out[key] = value
        elif expected is not None and not torch.equal(value.detach().float().cpu(), expected):
            raise ValueError(
                f"{key} differs from the causal mask of block_size={model.block_size}, "
                f"n_unmasked={model.n_unmasked}; check the model config"
            )
    return out
