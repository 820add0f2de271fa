"""minGPT: the autoregressive transformer of the second stage.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021,
§3.2) models the VQGAN code sequence with a decoder-only GPT (Radford et al., 2019) in the form
of Karpathy's minGPT. Parameter names, shapes and initialisation follow the original
`taming.modules.transformer.mingpt.GPT`, so its state dicts load strictly once the
`attn.mask` buffers are dropped with `gpt_checkpoint_filter` (the causal mask, and the
bidirectional prefix of `n_unmasked` tokens, are built on the fly instead).

One implementation of the maths (`CausalSelfAttention`, `Block`), two ways to run it:
  * `forward` — the original full-sequence pass (training, scoring, reference sampling), with
    `torch.nn.functional.scaled_dot_product_attention` (`is_causal` when possible);
  * `forward_cached` — incremental decoding against a static `KVCache` (gpt-fast / LlamaGen
    style: the same modules with `cache=`, `input_pos=`). Its Linear products go through
    `cpu_matmul.DecodeLinear` copies of the same weights (q/k/v fused; CPU kernels chosen by
    the number of rows; opt-in bf16/fp16/int8/w8a8 weight formats, `to_low_precision`). The copies
    are built once per weight version and format and kept until the weights change or
    `release_decode_weights()` (they are not pickled or deep-copied). One token per row (the
    sampling loop) runs `Block.step`, the same maths with the fewest tensor ops: at batch 1
    the ~100 ops of a token cost about as much as streaming the weights once.
    `compile_decode()` opts into a `torch.compile`d one-token step.
"""

from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taming.compiling import CheckedCompile, cpp_compiler
from taming.transformer.block import Block, BlockProducts, CausalSelfAttention
from taming.transformer.cpu_matmul import FORMATS
from taming.transformer.decode_weights import DecodeWeights
from taming.transformer.gpt_checkpoint import (
    DROP_KEY_SUFFIXES,
    gpt_checkpoint_filter,
    legacy_attn_mask,
)
from taming.transformer.kv_cache import KVCache
from taming.transformer.step_speed import step_seconds

logger = logging.getLogger(__name__)

__all__ = [
    "DROP_KEY_SUFFIXES",
    "GPT",
    "Block",
    "BlockProducts",
    "CausalSelfAttention",
    "gpt_checkpoint_filter",
    "legacy_attn_mask",
]


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
        self._decode: dict[str | None, DecodeWeights] = {}  # per format, see `_decode_weights`
        self._compiled_step = None  # torch.compile'd `_one_token` (see `compile_decode`)
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
            max_len: Longest sequence to decode (default `block_size`). With `compile_decode`
                on, the cache always holds `block_size` positions: its shape is part of the
                compiled graph, so one size serves every sequence length without recompiling.
            dtype: Cache dtype (default: the parameter dtype).
            device: Cache device (default: the parameter device).
        """
        max_len = self.block_size if max_len is None else max_len
        if not 0 < max_len <= self.block_size:
            raise ValueError(f"max_len must be in [1, block_size={self.block_size}], got {max_len}")
        if self._compiled_step is not None:
            max_len = self.block_size
        d = self.pos_emb.shape[-1]
        dtype = self.pos_emb.dtype if dtype is None else dtype
        device = self.pos_emb.device if device is None else device
        self._decode_weights(check_identity=True)
        return [
            KVCache(batch_size, self.n_head, max_len, d // self.n_head, dtype, device)
            for _ in self.blocks
        ]

    def to_low_precision(
        self, fmt: str | None = "bf16", only_if_faster: bool = True, rows: int = 1
    ) -> GPT:
        """Opt into low-precision decode products (`"bf16"`, `"fp16"`, `"int8"`, `"w8a8"`;
        `None` undoes).

        Only `forward_cached` (hence cached sampling) is affected: its Linears then read
        bf16/fp16 copies or per-channel int8 quantisations of the weights (`cpu_matmul`; with
        `"w8a8"` also their inputs, dynamically per call, multiplied in integers), while
        embeddings, LayerNorms, the residual stream, attention and the KV cache stay in the
        parameter dtype. The parameters and `forward` are untouched. Batch-1 decoding on CPU
        is memory bound, so fewer weight bytes per token can be faster; logits deviate from
        fp32 by ~1e-2 of their range (see tests/test_gpt.py).

        Args:
            fmt: The weight format.
            only_if_faster: On CPU, time this model's one-token decode step in fp32 and in
                `fmt` (`step_speed.step_seconds`: `rows` rows, ~50 steps, alternating) and
                keep fp32 where `fmt` is not faster on this CPU (logged as a warning; native
                bf16 dot products or not decide it). `decode_weight_format` says what is used.
            rows: The sequences that will be decoded together (the batch, doubled under
                classifier-free guidance): a format can be faster at one row and slower at
                eight (seen with AVX2 kernels: bf16 2.7 against 4.0 ms fp32 at one row, slower
                than fp32 at batch 8).
        """
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown format {fmt!r}; choose from {list(FORMATS)}")
        if fmt is not None and only_if_faster and self.head.weight.device.type == "cpu":
            fmt = self._faster_format(fmt, rows)
        self.decode_weight_format = fmt
        return self

    def _faster_format(self, fmt: str, rows: int) -> str | None:
        """`fmt` where its decode step is faster than fp32's here, else None (a warning)."""
        training, compiled = self.training, self._compiled_step
        self.eval()
        self._compiled_step = None  # time the eager step; do not compile while probing
        try:
            t32, t_fmt = step_seconds(self, fmt, rows)
        finally:
            self.train(training)
            self._compiled_step = compiled
        faster = t_fmt < t32
        log = logger.info if faster else logger.warning
        log(
            "%s decode weights: %.2f vs %.2f ms fp32 per decode step (%d row(s))%s",
            fmt, 1e3 * t_fmt, 1e3 * t32, rows, "" if faster else
            "; slower than fp32 on this CPU, decoding in fp32",
        )  # fmt: skip
        chosen = fmt if faster else None
        self._decode = {f: w for f, w in self._decode.items() if f == chosen}  # probe's copies
        return chosen

    def __getstate__(self) -> dict:
        state = super().__getstate__()
        state["_decode"] = {}  # a cache of packed weights, rebuilt on use
        state["_compiled_step"] = None  # compiled code does not travel; compile again
        return state

    def compile_decode(self, enable: bool = True) -> GPT:
        """Compile the one-token step of `forward_cached` with `torch.compile` (inductor).

        Opt-in. What is compiled is the lean `Block.step` loop itself, with the decode weights
        of the current format (fp32, bf16, int8: the same products as eager; w8a8: the float
        form of the same rounding, which inductor lowers itself, not fbgemm's call) and dynamic
        positions: inductor fuses the LayerNorms, GELU and residual adds around the products.
        The first and the last position of a cache run eager, so that one graph serves every
        other position (dynamo specialises position 0 and the view of the whole cache); the
        compilation (a minute or more for a large GPT on a laptop CPU) happens on the first
        call, which also runs the step eagerly once to check it (`compiling.CheckedCompile`:
        where they disagree, decoding stays eager, with a warning; both write the same cache
        slot). On CPU, inductor needs a C++ compiler: without one this raises a one-line
        `RuntimeError` instead of failing in the middle of sampling.
        """
        if not enable:
            self._compiled_step = None
            return self
        if self.head.weight.device.type == "cpu" and cpp_compiler() is None:
            raise RuntimeError(
                "torch.compile on CPU needs a C++ compiler (g++ or clang++ on PATH, or $CXX); "
                "install one or sample without compiling"
            )
        self._compiled_step = CheckedCompile(self._one_token, "GPT decode step", dynamic=True)
        return self

    def _one_token(
        self, h: Tensor, input_pos: int, cache: list[KVCache], weights: DecodeWeights
    ) -> Tensor:
        """One token per row through the blocks and the head: `h (B, C)` -> logits
        `(B, vocab_size)` (`Block.step`; what `compile_decode` compiles)."""
        for block, layer_cache, products in zip(self.blocks, cache, weights.blocks):
            h = block.step(h, layer_cache, input_pos, products)
        return weights.head(self.ln_f(h))

    def release_decode_weights(self) -> None:
        """Free the packed copies `forward_cached` keeps (rebuilt on its next call)."""
        self._decode = {}

    def _decode_weights(
        self, check_identity: bool = False, check_stamp: bool = True
    ) -> DecodeWeights:
        """Decode-layout weights of the current format, rebuilt when any parameter changed.

        One set per format used is kept (switching formats back and forth costs no rebuild);
        a rebuild drops the sets of the other formats that are out of date. `forward_cached`
        checks the parameters (~30 us for a 25M-parameter GPT) when a cache is set up and
        when a sequence starts or a chunk is fed, not at every one-token step: weights
        changed in the middle of a sequence are noticed from its next chunk on.
        """
        fmt = self.decode_weight_format
        weights = self._decode.get(fmt)
        if weights is not None and not (check_stamp or check_identity):
            return weights
        if weights is None or not weights.is_current(self, fmt, check_identity):
            with torch.no_grad():
                weights = DecodeWeights(self, fmt)
            current = {f: w for f, w in self._decode.items() if w.is_current(self, f, True)}
            self._decode = current | {fmt: weights}
        return weights

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
        weights = self._decode_weights(check_stamp=T > 1 or input_pos == 0)
        if T == 1:  # the hot loop of sampling: one token per row, the lean `Block.step`
            step = self._one_token
            if self._compiled_step is not None and 0 < input_pos < cache[0].max_len - 1:
                step = self._compiled_step
            return step(x[:, 0], input_pos, cache, weights).float()[:, None]  # (B, 1, vocab)
        mask, is_causal = _attention_mask(T, input_pos, self.n_unmasked, x.device)
        last = len(self.blocks) - 1
        for n, (block, layer_cache, products) in enumerate(zip(self.blocks, cache, weights.blocks)):
            x = block(x, mask, is_causal, layer_cache, input_pos, last_only and n == last, products)
        logits = weights.head(self.ln_f(x))  # (B, T or 1, vocab_size)
        return logits.float()
