"""The minGPT transformer block (pre-LN attention + MLP), one implementation for both paths.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021)
uses Karpathy's minGPT block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`, with separate
`key`/`query`/`value`/`proj` Linears and an exact-GELU MLP (the original parameter names).
The same modules serve the full-sequence pass and incremental decoding against a static
`KVCache` (`cache=`, `input_pos=`, as in gpt-fast and LlamaGen); in decoding, `BlockProducts`
swaps the Linears' products for `cpu_matmul.DecodeLinear` copies of the same weights.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taming.transformer.cpu_matmul import DecodeLinear
from taming.transformer.kv_cache import KVCache

__all__ = ["Block", "BlockProducts", "CausalSelfAttention", "step_gelu"]


class CausalSelfAttention(nn.Module):
    """Multi-head masked self-attention with separate `key`/`query`/`value`/`proj` Linears.

    One implementation for both paths: the full-sequence pass (`cache=None`) and incremental
    decoding, where the new keys/values are written into `cache` at `input_pos` and the
    queries attend to the filled prefix (gpt-fast / LlamaGen style). `products`, given by
    `GPT.forward_cached`, replaces the Linears' products by decode-layout copies of the same
    weights (`cpu_matmul.DecodeLinear`: fused q/k/v, CPU kernels, opt-in weight formats).
    """

    def __init__(
        self, n_embd: int, n_head: int, attn_pdrop: float = 0.0, resid_pdrop: float = 0.0
    ) -> None:
        super().__init__()
        if n_embd % n_head != 0:
            raise ValueError(f"n_embd={n_embd} is not divisible by n_head={n_head}")
        self.n_head = n_head
        self.key = nn.Linear(n_embd, n_embd)
        self.query = nn.Linear(n_embd, n_embd)
        self.value = nn.Linear(n_embd, n_embd)
        self.attn_pdrop = attn_pdrop
        self.resid_drop = nn.Dropout(resid_pdrop)
        self.proj = nn.Linear(n_embd, n_embd)

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        is_causal: bool = True,
        cache: KVCache | None = None,
        input_pos: int = 0,
        last_only: bool = False,
        products: BlockProducts | None = None,
    ) -> Tensor:
        """`x (B, T, C)` at positions `[input_pos, input_pos + T)` -> `(B, T, C)`, or
        `(B, 1, C)` for the last position only with `last_only` (all T keys/values are still
        computed and cached)."""
        B, T, C = x.shape
        hs = C // self.n_head
        if products is None:
            q, k, v = self.query(x), self.key(x), self.value(x)  # each (B, T, C)
        else:
            q, k, v = products.qkv(x).split(C, dim=-1)  # each (B, T, C)
        q = q.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = k.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = v.view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        if cache is not None:
            k, v = cache.update(input_pos, k, v)  # (B, nh, input_pos + T, hs)
        if last_only and T > 1:  # the last query sees every key; the other rows are not needed
            q, T, mask, is_causal = q[:, :, -1:], 1, None, False
        drop = self.attn_pdrop if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y) if products is None else products.proj(y))

    def step(self, x: Tensor, cache: KVCache, pos: int, products: BlockProducts) -> Tensor:
        """One token per row at position `pos` against `cache`: `x (B, C)` -> `(B, C)`.

        The same maths as `forward(x[:, None], cache=cache, input_pos=pos, products=...)` in
        eval mode (one query sees every cached key, so no mask), with as few tensor ops as
        possible: at batch 1 every op's dispatch weighs against a product that streams the
        weight in a few microseconds more.
        """
        B, C = x.shape
        nh = self.n_head
        q, k, v = products.qkv(x).view(B, 3, nh, C // nh).unbind(1)  # each (B, nh, hs)
        keys, values = cache.append(pos, k, v)  # each (B, nh, pos + 1, hs)
        y = F.scaled_dot_product_attention(q.unsqueeze(2), keys, values)  # (B, nh, 1, hs)
        return products.proj(y.reshape(B, C))


class Block(nn.Module):
    """Pre-LN transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`.

    `cache`, `input_pos`, `last_only` and `products` are those of `CausalSelfAttention`.
    """

    def __init__(
        self, n_embd: int, n_head: int, attn_pdrop: float = 0.0, resid_pdrop: float = 0.0
    ) -> None:
        super().__init__()
        self.ln1 = nn.LayerNorm(n_embd)
        self.ln2 = nn.LayerNorm(n_embd)
        self.attn = CausalSelfAttention(n_embd, n_head, attn_pdrop, resid_pdrop)
        self.mlp = nn.Sequential(
            nn.Linear(n_embd, 4 * n_embd),
            nn.GELU(),  # exact (erf) GELU, as the original
            nn.Linear(4 * n_embd, n_embd),
            nn.Dropout(resid_pdrop),
        )

    def forward(
        self,
        x: Tensor,
        mask: Tensor | None = None,
        is_causal: bool = True,
        cache: KVCache | None = None,
        input_pos: int = 0,
        last_only: bool = False,
        products: BlockProducts | None = None,
    ) -> Tensor:
        a = self.attn(self.ln1(x), mask, is_causal, cache, input_pos, last_only, products)
        x = x[:, -1:] + a if last_only else x + a
        h = self.ln2(x)
        if products is None:
            return x + self.mlp(h)
        fc1, act, fc2, drop = self.mlp
        return x + drop(products.fc2(act(products.fc1(h))))

    def step(self, x: Tensor, cache: KVCache, pos: int, products: BlockProducts) -> Tensor:
        """One token per row, `x (B, C)` -> `(B, C)`: `forward` in eval mode at `T = 1`
        (see `CausalSelfAttention.step`)."""
        x = x + self.attn.step(_norm(self.ln1, x), cache, pos, products)
        h = products.fc1(_norm(self.ln2, x))
        return x + products.fc2(step_gelu(h, self.mlp[1].approximate))


_set_mkldnn = getattr(torch._C, "_set_mkldnn_enabled", None)


def step_gelu(h: Tensor, approximate: str = "none") -> Tensor:
    """`F.gelu(h, approximate)` for the decode step's few rows, by ATen's own kernel.

    On CPU, float32 exact GELU goes to oneDNN when it is enabled, whose per-call set-up costs
    ~10 us whatever the size (12 us for 16 or 2048 elements here, against 1.5-3 us for ATen's
    vectorised kernel; equal from ~16k elements on): at batch 1 that was ~10% of a step with
    int8 products. oneDNN is switched off for this one call (a global flag: another thread's
    oneDNN op in that instant runs ATen's kernel, with the same results to rounding).
    """
    if _set_mkldnn is None or h.device.type != "cpu" or not torch.backends.mkldnn.enabled:
        return F.gelu(h, approximate=approximate)
    _set_mkldnn(False)
    try:
        return F.gelu(h, approximate=approximate)
    finally:
        _set_mkldnn(True)


def _norm(ln: nn.LayerNorm, x: Tensor) -> Tensor:
    """`ln(x)` without the module call (the decode loop runs ~20 of these per token)."""
    return F.layer_norm(x, ln.normalized_shape, ln.weight, ln.bias, ln.eps)


class BlockProducts(NamedTuple):
    """Decode-layout products of one block's Linears (same weights, `cpu_matmul` kernels)."""

    qkv: DecodeLinear  # query, key, value concatenated: (B, T, C) -> (B, T, 3C)
    proj: DecodeLinear
    fc1: DecodeLinear
    fc2: DecodeLinear

    @classmethod
    def of(cls, block: Block, fmt: str | None) -> BlockProducts:
        a, fc1, fc2 = block.attn, block.mlp[0], block.mlp[2]
        qkv = [a.query, a.key, a.value]
        return cls(
            DecodeLinear([m.weight for m in qkv], [m.bias for m in qkv], fmt),
            DecodeLinear([a.proj.weight], [a.proj.bias], fmt),
            DecodeLinear([fc1.weight], [fc1.bias], fmt),
            DecodeLinear([fc2.weight], [fc2.bias], fmt),
        )
