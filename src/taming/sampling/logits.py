"""Logit processing for sampling: temperature, top-k and nucleus (top-p) filtering.

`top_k_logits` is the original minGPT / `Net2NetTransformer` filter. `top_k_top_p_filtering`
re-implements the semantics of HuggingFace transformers 4.3.1 (used by the original
`sample_with_past`; the function was removed from later releases). Nucleus sampling is from
Holtzman et al., "The Curious Case of Neural Text Degeneration" (ICLR 2020).

All functions take logits `(..., vocab)` and return a new tensor; filtered entries are `-inf`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = [
    "apply_temperature",
    "filter_logits",
    "top_k_logits",
    "top_k_top_p_filtering",
    "top_p_logits",
]


def apply_temperature(logits: Tensor, temperature: float = 1.0) -> Tensor:
    """`logits / temperature` (a no-op for 1.0, where the division is exact anyway)."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    return logits if temperature == 1.0 else logits / temperature


def top_k_logits(logits: Tensor, k: int) -> Tensor:
    """Set every logit strictly below the k-th largest to `-inf` (ties at the k-th survive).

    This is the original `top_k_logits`; `k` is clamped to the vocabulary size.
    """
    if k < 1:
        raise ValueError(f"top-k needs k >= 1, got {k}")
    k = min(k, logits.shape[-1])
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_logits(logits: Tensor, top_p: float, min_tokens_to_keep: int = 1) -> Tensor:
    """Nucleus filtering with the semantics of transformers 4.3.1 `TopPLogitsWarper`.

    Tokens are sorted by descending logit; a token is removed if the cumulative softmax
    probability of the tokens *before* it already exceeds `top_p` (i.e. the first token that
    crosses the threshold is kept, as are the `min_tokens_to_keep` most likely ones). Note that
    `top_p=1.0` still runs the pass, as in 4.3.1: tokens after the point where the float32
    cumulative sum rounds above 1 are dropped (a negligible tail).
    """
    if not 0.0 <= top_p <= 1.0:
        raise ValueError(f"top_p must be in [0, 1], got {top_p}")
    sorted_logits, sorted_idx = torch.sort(logits, dim=-1, descending=True)
    cum_probs = F.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
    remove = cum_probs > top_p
    if min_tokens_to_keep > 1:
        remove[..., : min_tokens_to_keep - 1] = False
    remove = torch.cat((torch.zeros_like(remove[..., :1]), remove[..., :-1]), dim=-1)  # shift
    remove = remove.scatter(-1, sorted_idx, remove)  # back to vocabulary order
    return logits.masked_fill(remove, float("-inf"))


def top_k_top_p_filtering(
    logits: Tensor,
    top_k: int = 0,
    top_p: float = 1.0,
    min_tokens_to_keep: int = 1,
) -> Tensor:
    """transformers 4.3.1 `top_k_top_p_filtering`: top-k if `top_k > 0`, then top-p if
    `0 <= top_p <= 1` (always, for valid values). Filtered entries are `-inf`."""
    if top_k > 0:
        k = min(max(top_k, min_tokens_to_keep), logits.shape[-1])
        logits = top_k_logits(logits, k)
    if 0.0 <= top_p <= 1.0:
        logits = top_p_logits(logits, top_p, min_tokens_to_keep)
    return logits


def filter_logits(
    logits: Tensor,
    top_k: int | None = None,
    top_p: float | None = None,
    temperature: float = 1.0,
) -> Tensor:
    """Temperature, then top-k, then top-p, as the original samplers order them.

    Args:
        logits: `(..., vocab)` logits.
        top_k: Keep the `top_k` largest logits (ties survive); `None` or 0 disables.
        top_p: Nucleus threshold (transformers 4.3.1 semantics, see `top_p_logits`); `None`
            disables. Unlike the original `sample_with_past`, it also applies without top-k.
        temperature: Divisor of the logits (> 0).
    """
    logits = apply_temperature(logits, temperature)
    if top_k:
        logits = top_k_logits(logits, top_k)
    if top_p is not None:
        logits = top_p_logits(logits, top_p)
    return logits
