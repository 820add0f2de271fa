"""minGPT: the autoregressive transformer of the second stage.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021,
§3.2) models the VQGAN code sequence with a decoder-only GPT (Radford et al., 2019) in the form
of Karpathy's minGPT. Parameter names, shapes and initialisation follow the original
`taming.modules.transformer.mingpt.GPT`, so its state dicts load strictly once the
`attn.mask` buffers are dropped with `gpt_checkpoint_filter` (the causal mask, and the
bidirectional prefix of `n_unmasked` tokens, are built on the fly instead).

Two execution paths:
  * `forward` — the original full-sequence pass (training, scoring, reference sampling), with
    `torch.nn.functional.scaled_dot_product_attention` (`is_causal` when possible);
  * `forward_cached` — incremental decoding against a static `KVCache` (gpt-fast style). For
    float32 decoding on CPU it splits the skinny products over the cores by output slices, or
    uses oneDNN with a reordered weight from 3 rows on (`_PackedLinear`; 2.7x faster Linears
    at batch 1, 1.7x at batch 8); q/k/v are fused into one weight. These copies are built
    once per weight version and kept until the weights change or `release_decode_weights()`
    (they are not pickled or deep-copied). `to_low_precision("bf16")` opts into bf16 weights
    for this path only.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taming.transformer.kv_cache import KVCache

logger = logging.getLogger(__name__)

__all__ = [
    "DROP_KEY_SUFFIXES",
    "GPT",
    "Block",
    "CausalSelfAttention",
    "gpt_checkpoint_filter",
    "legacy_attn_mask",
]

# State-dict keys of the original GPT that this implementation does not register.
DROP_KEY_SUFFIXES: tuple[str, ...] = (".attn.mask",)

_LOW_PRECISION = {"bf16": torch.bfloat16, "fp16": torch.float16}


def legacy_attn_mask(block_size: int, n_unmasked: int = 0) -> Tensor:
    """The `attn.mask` buffer the original stored: `tril(ones(T, T))` plus an all-ones
    `n_unmasked x n_unmasked` top-left square, float32, shape `(1, 1, T, T)`."""
    mask = torch.tril(torch.ones(block_size, block_size))
    if n_unmasked > 0:
        mask[:n_unmasked, :n_unmasked] = 1
    return mask.view(1, 1, block_size, block_size)


def gpt_checkpoint_filter(
    state_dict: Mapping[str, Tensor], model: GPT | None = None
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


def _attention_mask(
    q_len: int, pos: int, n_unmasked: int, device: torch.device
) -> tuple[Tensor | None, bool]:
    """Mask for queries at absolute positions `[pos, pos + q_len)` over keys `[0, pos + q_len)`.

    Query `i` sees key `j` iff `j <= i`, or both lie in the bidirectional prefix
    (`i, j < n_unmasked`). Returns `(bool mask or None, is_causal)` for SDPA.
    """
    if q_len == 1:
        return None, False  # one query sees every key up to itself (also inside the prefix)
    if pos == 0 and n_unmasked <= 1:
        return None, True
    i = torch.arange(pos, pos + q_len, device=device)[:, None]
    j = torch.arange(pos + q_len, device=device)[None, :]
    return (j <= i) | ((i < n_unmasked) & (j < n_unmasked)), False


class CausalSelfAttention(nn.Module):
    """Multi-head masked self-attention with separate `key`/`query`/`value`/`proj` Linears."""

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

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = True) -> Tensor:
        B, T, C = x.shape
        hs = C // self.n_head
        q = self.query(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        k = self.key(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        v = self.value(x).view(B, T, self.n_head, hs).transpose(1, 2)  # (B, nh, T, hs)
        drop = self.attn_pdrop if self.training else 0.0
        y = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=drop, is_causal=is_causal
        )  # (B, nh, T, hs)
        y = y.transpose(1, 2).reshape(B, T, C)  # (B, T, C)
        return self.resid_drop(self.proj(y))


class Block(nn.Module):
    """Pre-LN transformer block: `x + attn(ln1(x))`, then `x + mlp(ln2(x))`."""

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

    def forward(self, x: Tensor, mask: Tensor | None = None, is_causal: bool = True) -> Tensor:
        x = x + self.attn(self.ln1(x), mask, is_causal)
        return x + self.mlp(self.ln2(x))


# Float32 decoding products on CPU (memory- or latency-bound skinny GEMMs; MKL's threading of
# them leaves much of the machine idle). Measured over all Linears of the 8 x 512-wide
# benchmark GPT (2 threads, AVX2, EPYC), ms per call of every Linear once:
#   rows                       1     2     4     8    32    128   512
#   F.linear (MKL)           8.5  13.0  12.6  11.5  24.7  62.8  190
#   2 output slices, bmm     3.1   4.7   6.2   8.6  18.8  52.9  179
#   oneDNN, packed weight    5.2   5.2   5.9   6.9  13.9  43.4  166
# Up to `_COLUMN_MAX_ROWS` rows: `W @ x^T` with the weight's `(out, in)` layout cut into
# `_SPLITS` output slices, one `bmm` (both cores stream half the weight each, no copy). Above:
# oneDNN's linear with a weight reordered once into its blocked layout, where that op exists;
# otherwise `x @ W^T` in output slices, or `F.linear` beyond `_SPLIT_MAX_ROWS` rows.
_SPLITS = 2
_COLUMN_MAX_ROWS = 2
_SPLIT_MAX_ROWS = 128


def _onednn_linear_weight(weight: Tensor) -> Tensor | None:
    """The weight in oneDNN's blocked linear layout, or None where this torch has no oneDNN."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 8)
        torch.ops.mkldnn._linear_pointwise(weight.new_zeros(1, weight.shape[1]), packed, None,
                                           "none", [], "")  # fmt: skip
    except (AttributeError, RuntimeError, NotImplementedError):  # private ops: be defensive
        logger.debug("oneDNN linear is not available; using bmm output slices")
        return None
    return packed


class _PackedLinear:
    """One Linear, or several sharing the input (q/k/v, concatenated outputs), for decoding.

    The weight is used in its `(out, in)` layout: the parameter itself when there is one part
    in the parameter dtype, else a concatenated (or cast) copy. On CPU in float32 the product
    depends on the number of rows (see the table above); the oneDNN copy of the weight is made
    on the first call with more than `_COLUMN_MAX_ROWS` rows. Half precision uses `F.linear`.
    Casts the input to the weight dtype; the output stays in that dtype. Every output element
    is one float32 dot product over the whole input axis, as in `F.linear`.
    """

    __slots__ = ("_weight", "_bias", "_cpu_fp32", "_onednn")

    def __init__(
        self, weights: list[Tensor], biases: list[Tensor] | None, dtype: torch.dtype
    ) -> None:
        ws = [w.detach().to(dtype) for w in weights]
        self._weight = ws[0] if len(ws) == 1 else torch.cat(ws)  # (out, in)
        self._bias = None if biases is None else torch.cat([b.detach().to(dtype) for b in biases])
        out = self._weight.shape[0]
        self._cpu_fp32 = (
            self._weight.device.type == "cpu" and dtype == torch.float32 and out % _SPLITS == 0
        )
        self._onednn: Tensor | None | bool = False  # False: not tried yet

    def __call__(self, x: Tensor) -> Tensor:  # x (N, in) -> (N, out)
        w, b = self._weight, self._bias
        if x.dtype != w.dtype:
            x = x.to(w.dtype)
        n = x.shape[0]
        if not self._cpu_fp32:
            return F.linear(x, w, b)
        out, d_in = w.shape
        ws = w.view(_SPLITS, out // _SPLITS, d_in)  # (S, out/S, in)
        if n <= _COLUMN_MAX_ROWS:
            y = torch.bmm(ws, x.t().expand(_SPLITS, d_in, n)).view(out, n)  # (out, N)
            if b is not None:
                y.add_(b[:, None])
            return y.t().contiguous()  # (N, out)
        if self._onednn is False:
            self._onednn = _onednn_linear_weight(w)
        if self._onednn is not None:
            return torch.ops.mkldnn._linear_pointwise(x, self._onednn, b, "none", [], "")
        if n > _SPLIT_MAX_ROWS:
            return F.linear(x, w, b)
        y = torch.bmm(x.expand(_SPLITS, n, d_in), ws.transpose(1, 2))  # (S, N, out/S)
        y = y.transpose(0, 1).reshape(n, out)  # (N, out), a copy
        return y if b is None else y.add_(b)


class _DecodeBlock:
    __slots__ = ("ln1", "qkv", "proj", "ln2", "fc1", "fc2")

    def __init__(self, block: Block, dtype: torch.dtype) -> None:
        a, fc1, fc2 = block.attn, block.mlp[0], block.mlp[2]
        self.ln1 = (block.ln1.normalized_shape, block.ln1.weight, block.ln1.bias, block.ln1.eps)
        self.ln2 = (block.ln2.normalized_shape, block.ln2.weight, block.ln2.bias, block.ln2.eps)
        self.qkv = _PackedLinear(
            [a.query.weight, a.key.weight, a.value.weight],
            [a.query.bias, a.key.bias, a.value.bias],
            dtype,
        )
        self.proj = _PackedLinear([a.proj.weight], [a.proj.bias], dtype)
        self.fc1 = _PackedLinear([fc1.weight], [fc1.bias], dtype)
        self.fc2 = _PackedLinear([fc2.weight], [fc2.bias], dtype)


class _DecodeWeights:
    """What `forward_cached` reads, packed for one weight format and one weight version.

    `stamp` records the version counter and storage of every parameter, so in-place updates
    (`load_state_dict`, optimiser steps) and moves (`.to()`) are noticed cheaply on every call;
    replaced parameter objects are noticed by the identity check of `setup_cache`.
    """

    __slots__ = ("fmt", "params", "stamp", "blocks", "ln_f", "head")

    def __init__(self, gpt: GPT, fmt: str | None) -> None:
        dtype = _LOW_PRECISION.get(fmt, gpt.head.weight.dtype)
        self.fmt, self.params = fmt, list(gpt.parameters())
        self.stamp = self._stamp()
        self.blocks = [_DecodeBlock(block, dtype) for block in gpt.blocks]
        ln = gpt.ln_f
        self.ln_f = (ln.normalized_shape, ln.weight, ln.bias, ln.eps)
        self.head = _PackedLinear([gpt.head.weight], None, dtype)

    def _stamp(self) -> tuple:
        return tuple((p._version, p.data_ptr()) for p in self.params)

    def is_current(self, gpt: GPT, fmt: str | None, check_identity: bool) -> bool:
        if fmt != self.fmt or self._stamp() != self.stamp:
            return False
        if check_identity:
            params = list(gpt.parameters())
            return len(params) == len(self.params) and all(
                a is b for a, b in zip(params, self.params)
            )
        return True


class GPT(nn.Module):
    """The original minGPT (`taming.modules.transformer.mingpt.GPT`), same parameters and init.

    Args:
        vocab_size: Number of token ids (image codes; conditioning tokens share the table).
        block_size: Maximum sequence length `T` (size of `pos_emb`).
        n_layer: Number of transformer blocks.
        n_head: Attention heads per block.
        n_embd: Width `d`.
        embd_pdrop: Dropout on the input embeddings.
        resid_pdrop: Dropout on the attention and MLP outputs.
        attn_pdrop: Dropout on the attention weights.
        n_unmasked: Length of a bidirectional prefix (its tokens attend to each other).
    """

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        n_layer: int = 12,
        n_head: int = 8,
        n_embd: int = 256,
        embd_pdrop: float = 0.0,
        resid_pdrop: float = 0.0,
        attn_pdrop: float = 0.0,
        n_unmasked: int = 0,
    ) -> None:
        super().__init__()
        self.vocab_size = vocab_size
        self.block_size = block_size
        self.n_head = n_head
        self.n_unmasked = n_unmasked
        self.tok_emb = nn.Embedding(vocab_size, n_embd)
        self.pos_emb = nn.Parameter(torch.zeros(1, block_size, n_embd))
        self.drop = nn.Dropout(embd_pdrop)
        self.blocks = nn.ModuleList(
            Block(n_embd, n_head, attn_pdrop, resid_pdrop) for _ in range(n_layer)
        )
        self.ln_f = nn.LayerNorm(n_embd)
        self.head = nn.Linear(n_embd, vocab_size, bias=False)
        self.apply(self._init_weights)
        self.decode_weight_format: str | None = None
        self._decode: _DecodeWeights | None = None
        logger.debug("GPT with %d parameters", sum(p.numel() for p in self.parameters()))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if isinstance(module, nn.Linear) and module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def get_block_size(self) -> int:
        return self.block_size

    def _embed(self, idx: Tensor, embeddings: Tensor | None, pos: int) -> Tensor:
        """Token (+ prefix) embeddings plus the position rows `[pos, pos + E + t)`."""
        x = self.tok_emb(idx)  # (B, t, d)
        if embeddings is not None:
            x = torch.cat((embeddings, x), dim=1)  # (B, E + t, d)
        end = pos + x.shape[1]
        if end > self.block_size:
            raise ValueError(
                f"Cannot forward positions up to {end}: the model's block_size is "
                f"{self.block_size} (conditioning + image tokens must fit)"
            )
        return x + self.pos_emb[:, pos:end]

    def forward(
        self, idx: Tensor, embeddings: Tensor | None = None, targets: Tensor | None = None
    ) -> tuple[Tensor, Tensor | None]:
        """Full causal pass, exactly as the original.

        Args:
            idx: Token ids `(B, t)`.
            embeddings: Optional `(B, E, d)` embeddings prepended to the token embeddings.
            targets: Optional ids `(B, E + t)` for a mean cross-entropy loss.

        Returns:
            `(logits (B, E + t, vocab_size), loss or None)`.
        """
        x = self.drop(self._embed(idx, embeddings, 0))
        mask, is_causal = _attention_mask(x.shape[1], 0, self.n_unmasked, x.device)
        for block in self.blocks:
            x = block(x, mask, is_causal)
        logits = self.head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss

    # ------------------------------------------------------------------ incremental decoding

    def setup_cache(
        self,
        batch_size: int,
        max_len: int | None = None,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> list[KVCache]:
        """Allocate one static `KVCache` per block for `forward_cached`.

        Args:
            batch_size: Batch size of the decoding run.
            max_len: Longest sequence to decode (default `block_size`).
            dtype: Cache dtype (default: the parameter dtype).
            device: Cache device (default: the parameter device).
        """
        max_len = self.block_size if max_len is None else max_len
        if not 0 < max_len <= self.block_size:
            raise ValueError(f"max_len must be in [1, block_size={self.block_size}], got {max_len}")
        d = self.pos_emb.shape[-1]
        dtype = self.pos_emb.dtype if dtype is None else dtype
        device = self.pos_emb.device if device is None else device
        self._decode_weights(check_identity=True)
        return [
            KVCache(batch_size, self.n_head, max_len, d // self.n_head, dtype, device)
            for _ in self.blocks
        ]

    def to_low_precision(self, fmt: str | None = "bf16") -> GPT:
        """Opt into low-precision decode weights (`"bf16"` or `"fp16"`; `None` to undo).

        Only `forward_cached` (hence cached sampling) is affected: it then multiplies with
        bf16/fp16 copies of the Linear weights while embeddings, LayerNorms, the residual
        stream, attention and the KV cache stay in the parameter dtype. The parameters and
        `forward` are untouched. On CPU this moves half the bytes per token (batch-1 decoding
        is memory bound); logits then deviate from fp32 by ~1e-2 (see tests/test_gpt.py).
        """
        if fmt is not None and fmt not in _LOW_PRECISION:
            raise ValueError(f"unknown format {fmt!r}; choose from {sorted(_LOW_PRECISION)}")
        self.decode_weight_format = fmt
        return self

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_decode"] = None  # a cache of packed weights, rebuilt on use
        return state

    def release_decode_weights(self) -> None:
        """Free the packed copies `forward_cached` keeps (rebuilt on its next call)."""
        self._decode = None

    def _decode_weights(self, check_identity: bool = False) -> _DecodeWeights:
        """Decode-layout weights, rebuilt when the format or any parameter changed."""
        fmt = self.decode_weight_format
        if self._decode is None or not self._decode.is_current(self, fmt, check_identity):
            with torch.no_grad():
                self._decode = _DecodeWeights(self, fmt)
        return self._decode

    @torch.inference_mode()
    def forward_cached(
        self,
        idx: Tensor,
        input_pos: int,
        cache: list[KVCache],
        embeddings: Tensor | None = None,
        last_only: bool = False,
    ) -> Tensor:
        """Process the tokens at positions `[input_pos, input_pos + T)` against `cache`.

        The cache must hold the keys/values of positions `[0, input_pos)` of the same
        sequence; this call writes those of the new tokens. Position embeddings are the
        absolute rows. A bidirectional prefix (`n_unmasked`) must arrive in one call
        starting at 0. Runs in inference mode; the model must be in eval mode.

        Args:
            idx: New token ids `(B, t)`.
            input_pos: Absolute position of the first new token (a Python int).
            cache: Per-block caches from `setup_cache`.
            embeddings: Optional `(B, E, d)` prefix embeddings (only with `input_pos == 0`).
            last_only: Return only the last position's logits (skips the other positions'
                work in the last block and the head).

        Returns:
            float32 logits `(B, T, vocab_size)`, or `(B, 1, vocab_size)` with `last_only`.
        """
        if self.training:
            raise RuntimeError("forward_cached is for inference; call .eval() first")
        if embeddings is not None and input_pos != 0:
            raise ValueError("prefix embeddings can only be fed at input_pos=0")
        x = self._embed(idx, embeddings, input_pos)
        B, T, C = x.shape
        if 0 < self.n_unmasked and not (
            input_pos >= self.n_unmasked or (input_pos == 0 and T >= self.n_unmasked)
        ):
            raise ValueError(
                f"the bidirectional prefix (n_unmasked={self.n_unmasked}) must be fed in one "
                f"call from position 0; got positions [{input_pos}, {input_pos + T})"
            )
        weights = self._decode_weights()
        mask, is_causal = _attention_mask(T, input_pos, self.n_unmasked, x.device)
        nh = self.n_head
        last = len(weights.blocks) - 1
        for n, (w, layer_cache) in enumerate(zip(weights.blocks, cache)):
            h = F.layer_norm(x, *w.ln1).view(B * T, C)
            qkv = w.qkv(h).view(B, T, 3, nh, C // nh)
            q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each (B, nh, T, hs)
            k, v = layer_cache.update(input_pos, k, v)  # (B, nh, end, hs)
            if n == last and last_only and T > 1:
                # The last query sees every cached key; the other rows are not needed.
                q, x, T, mask, is_causal = q[:, :, -1:], x[:, -1:], 1, None, False
            if q.dtype != k.dtype:
                q = q.to(k.dtype)
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=is_causal)
            y = y.transpose(1, 2).reshape(B * T, C)  # (B*T, C)
            x = x + w.proj(y).view(B, T, C)
            h = F.layer_norm(x, *w.ln2).view(B * T, C)
            x = x + w.fc2(F.gelu(w.fc1(h))).view(B, T, C)
        if last_only:
            x = x[:, -1:]
            T = 1
        logits = weights.head(F.layer_norm(x, *weights.ln_f).view(B * T, C)).view(B, T, -1)
        return logits.float()
