"""Static key/value cache for incremental (autoregressive) decoding.

The gpt-fast / LlamaGen design: one preallocated buffer pair `(B, n_head, max_len, head_dim)`
per layer, written in place at the absolute sequence positions of the new tokens. It replaces
the original minGPT `forward_with_past`, which stacked the `present` tensors of every step and
re-concatenated the whole past at each step (quadratic copying).

Positions are plain Python ints (contiguous runs `[pos, pos + T)`), so the attention only ever
sees the filled slice `[:pos + T]` and no mask over stale entries is needed. Writing at an
earlier position overwrites ("rewinds") the cache, which the sliding-window sampler uses.
The buffers start uninitialised: a run writes positions from 0 upwards (the samplers' first
call covers the whole conditioning prefix), never past an unwritten gap.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["KVCache"]


class KVCache(nn.Module):
    """Preallocated keys and values of one attention layer.

    Args:
        batch_size: Batch size the cache serves (fixed).
        n_head: Number of attention heads.
        max_len: Longest sequence (in tokens) the cache can hold.
        head_dim: Size of one head (`n_embd // n_head`).
        dtype: Buffer dtype (the activation dtype of the model).
        device: Buffer device.
    """

    def __init__(
        self,
        batch_size: int,
        n_head: int,
        max_len: int,
        head_dim: int,
        dtype: torch.dtype = torch.float32,
        device: torch.device | str | None = None,
    ) -> None:
        super().__init__()
        shape = (batch_size, n_head, max_len, head_dim)
        # uninitialised: only the written prefix is ever read, and zeroing both buffers of every
        # layer (134 MB at batch 8 for the 8 x 512 benchmark GPT) costs ~3% of a batch-8 sample
        self.register_buffer("k_cache", torch.empty(shape, dtype=dtype, device=device), False)
        self.register_buffer("v_cache", torch.empty(shape, dtype=dtype, device=device), False)

    @property
    def max_len(self) -> int:
        return self.k_cache.shape[2]

    @property
    def batch_size(self) -> int:
        return self.k_cache.shape[0]

    def update(self, pos: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """Write `k`, `v` of the tokens at positions `[pos, pos + T)` and return the filled prefix.

        Args:
            pos: Absolute position of the first new token.
            k: New keys `(B, n_head, T, head_dim)`.
            v: New values `(B, n_head, T, head_dim)`.

        Returns:
            Views `(keys, values)`, each `(B, n_head, pos + T, head_dim)`, of the cache.
        """
        k_cache, v_cache = self.k_cache, self.v_cache
        t = k.shape[2]
        if pos < 0 or pos + t > k_cache.shape[2]:
            raise IndexError(
                f"KV cache holds {k_cache.shape[2]} positions, got writes at [{pos}, {pos + t})"
            )
        k_cache.narrow(2, pos, t).copy_(k)
        v_cache.narrow(2, pos, t).copy_(v)
        return k_cache.narrow(2, 0, pos + t), v_cache.narrow(2, 0, pos + t)

    def append(self, pos: int, k: Tensor, v: Tensor) -> tuple[Tensor, Tensor]:
        """`update` for one token per row: `k`, `v` `(B, n_head, head_dim)` written at `pos`;
        returns the filled prefix `(B, n_head, pos + 1, head_dim)` of keys and values."""
        k_cache, v_cache = self.k_cache, self.v_cache
        if not 0 <= pos < k_cache.shape[2]:
            raise IndexError(f"KV cache holds {k_cache.shape[2]} positions, got a write at {pos}")
        k_cache.select(2, pos).copy_(k)
        v_cache.select(2, pos).copy_(v)
        return k_cache.narrow(2, 0, pos + 1), v_cache.narrow(2, 0, pos + 1)
