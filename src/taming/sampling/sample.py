"""Autoregressive sampling of image tokens from the second-stage GPT (Esser et al., CVPR 2021).

Token level and independent of the VQGAN: a conditioning sequence (SOS token, class token or
conditioning codes) is followed by image tokens drawn one at a time. With `use_cache=True`
(default) every step feeds only the new token(s) through `GPT.forward_cached` against a static
KV cache; `use_cache=False` recomputes the whole prefix at every step like the original
`Net2NetTransformer.sample`.

Settings come as one `SamplingConfig` (plus keyword overrides of its fields).

Reproducibility contract: each sampled step computes `probs (B, vocab)` in float32 (temperature,
top-k, top-p, softmax, in that order) and makes exactly one `torch.multinomial(probs, 1,
generator=generator)` call, with no other use of the random generator. Drawn the same way, the
tokens equal the original's token for token (checked against its fixtures); bitwise equality
additionally needs the same torch version and device, since the probabilities only agree to
~1e-6 and the draw compares them with uniform numbers.

Classifier-free guidance (Ho & Salimans, 2022) runs the conditional and the unconditional
(`null_cond`) sequences as one batch and mixes the raw logits,
`logits = uncond + cfg_scale * (cond - uncond)`. Mixing log-probabilities instead gives the same
distribution (they differ from the logits by a per-row constant, to which softmax, top-k and
top-p are invariant). `cfg_scale == 1` is plain conditional sampling: no unconditional pass.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor
from tqdm import tqdm

from taming.sampling.config import SamplingConfig, resolve_config
from taming.sampling.logits import filter_logits
from taming.transformer.gpt import GPT

__all__ = ["StepCallback", "TokenSampler", "complete_tokens", "decode_positions", "sample_tokens"]

StepCallback = Callable[[int, Tensor], None]
"""`callback(step, probs)`: called after each sampled step with the `(B, vocab)` distribution
the token was drawn from (after guidance, temperature and filtering)."""


class TokenSampler:
    """One sampling step: logits `(G*B, vocab)` -> tokens `(B,)` and their distribution.

    Args:
        batch_size: `B`, the number of sequences drawn.
        config: The decoding settings (temperature, top-k, top-p, greedy or not, guidance).
        generator: Random generator of the draws (default: torch's global one).
    """

    def __init__(
        self,
        batch_size: int,
        config: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
    ) -> None:
        self.batch_size = batch_size
        self.config = config if config is not None else SamplingConfig()
        self.generator = generator

    @property
    def groups(self) -> int:
        """Rows per drawn sequence in the model batch (2 with guidance)."""
        return 2 if self.config.guided else 1

    def __call__(self, logits: Tensor) -> tuple[Tensor, Tensor]:
        cfg = self.config
        if self.groups == 2:
            cond, uncond = logits[: self.batch_size], logits[self.batch_size :]
            logits = uncond + cfg.cfg_scale * (cond - uncond)
        logits = filter_logits(logits.float(), cfg.top_k, cfg.top_p, cfg.temperature)
        probs = F.softmax(logits, dim=-1)  # (B, vocab)
        if cfg.sample:
            tokens = torch.multinomial(probs, num_samples=1, generator=self.generator)
        else:
            tokens = torch.topk(probs, k=1, dim=-1).indices
        return tokens[:, 0], probs


def decode_positions(
    gpt: GPT,
    seq: Tensor,
    targets: Sequence[int],
    sampler: TokenSampler,
    forced: tuple[Tensor, Tensor] | None = None,
    callback: StepCallback | None = None,
    progress: bool = False,
) -> Tensor:
    """Fill `seq[:, p]` for each target position `p` (ascending) from the tokens before it.

    Everything in `seq` that is not a target is given context. With the cache, the tokens
    between two targets are fed as one chunk, so runs of given tokens cost one call.

    Args:
        gpt: The transformer (eval mode).
        seq: Token buffer `(G*B, N)`, modified in place; rows `[g*B, (g+1)*B)` are group `g`
            (conditional, then unconditional with guidance). Drawn tokens go to every group.
        targets: Positions to draw, ascending, each `>= 1`.
        sampler: The per-step draw; `sampler.config.use_cache` chooses incremental decoding
            (default) or full recomputation per step.
        forced: Optional `(tokens (B, N), mask (B, N) bool)`: where `mask` is set, the drawn
            token of that row is replaced by the given one (rows that know their token still
            take part in the batched draw).
        callback: `callback(step, probs)` after each draw.
        progress: Show a tqdm bar.

    Returns:
        `seq`.
    """
    if gpt.training:
        raise RuntimeError("sampling needs the transformer in eval mode")
    if not targets:
        return seq
    if targets[0] < 1:
        raise ValueError("need at least one conditioning or given token before the first target")
    if targets[-1] > gpt.block_size:
        raise ValueError(
            f"sampling position {targets[-1]} needs {targets[-1]} tokens of context, more than "
            f"the model's block_size={gpt.block_size}"
        )
    B, groups = sampler.batch_size, sampler.groups
    if seq.shape[0] != B * groups:
        raise ValueError(f"token buffer has {seq.shape[0]} rows, expected {B * groups}")
    with torch.inference_mode():
        use_cache = sampler.config.use_cache
        cache = gpt.setup_cache(seq.shape[0], targets[-1]) if use_cache else None
        fed = 0
        for step, p in enumerate(tqdm(targets, desc="sampling", disable=not progress)):
            if cache is not None:
                logits = gpt.forward_cached(seq[:, fed:p], fed, cache, last_only=True)[:, -1]
                fed = p
            else:
                logits = gpt(seq[:, :p])[0][:, -1]
            tokens, probs = sampler(logits)
            if forced is not None:
                tokens = torch.where(forced[1][:, p], forced[0][:, p], tokens)
            seq[:, p] = tokens if groups == 1 else tokens.repeat(groups)
            if callback is not None:
                callback(step, probs)
    return seq


def _as_tokens(name: str, tokens: Tensor, batch: int | None = None) -> Tensor:
    if tokens.dim() != 2:
        raise ValueError(f"{name} must be (B, L) token ids, got shape {tuple(tokens.shape)}")
    if batch is not None and tokens.shape[0] != batch:
        raise ValueError(f"{name} has batch {tokens.shape[0]}, expected {batch}")
    return tokens.long()


def _token_buffer(
    cond: Tensor, image: Tensor, cfg_scale: float, null_cond: Tensor | None
) -> Tensor:
    """`[cond | image]` rows, plus `[null_cond | image]` rows with guidance."""
    B, Lc = cond.shape
    rows = [torch.cat((cond, image), dim=1)]
    if cfg_scale != 1.0:
        rows.append(torch.cat((null_rows(null_cond, B, Lc, cond.device), image), dim=1))
    return torch.cat(rows, dim=0)


def null_rows(null_cond: Tensor | None, batch: int, length: int, device: torch.device) -> Tensor:
    """The unconditional context `(batch, length)` of guided sampling, from `null_cond`
    `(length,)`, `(1, length)` or `(batch, length)`."""
    if null_cond is None:
        raise ValueError("cfg_scale != 1 needs null_cond (the unconditional tokens)")
    null = null_cond.long().to(device)
    null = null.view(1, -1) if null.dim() == 1 else null
    if null.dim() != 2 or null.shape[-1] != length or null.shape[0] not in (1, batch):
        raise ValueError(
            f"null_cond has shape {tuple(null.shape)}; the conditioning needs "
            f"(1 or {batch}, {length})"
        )
    return null.expand(batch, length)


def sample_tokens(
    gpt: GPT,
    cond: Tensor,
    steps: int,
    config: SamplingConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    progress: bool = False,
    x: Tensor | None = None,
    null_cond: Tensor | None = None,
    **settings: Any,
) -> Tensor:
    """Draw `steps` image tokens after `cond` (and an optional given prefix `x`).

    Equivalent to the original `Net2NetTransformer.sample(x, c, steps, ...)` (token level),
    plus top-p and classifier-free guidance.

    Args:
        gpt: The transformer, in eval mode.
        cond: Conditioning tokens `(B, Lc)` (e.g. `[[sos]]*B` or class ids).
        steps: Number of tokens to draw.
        config: Decoding settings (default `SamplingConfig()`: temperature 1, no filter,
            multinomial, no guidance, KV cache).
        generator: Generator for the draws (default: the global one).
        callback: `callback(step, probs)` after each step.
        progress: Show a tqdm bar.
        x: Given image tokens `(B, Lx)` that start the image; they are kept in the output.
        null_cond: Unconditional tokens `(Lc,)`, `(1, Lc)` or `(B, Lc)` for guidance.
        **settings: Overrides of single `SamplingConfig` fields (`top_k=100`).

    Returns:
        Image tokens `(B, Lx + steps)`: the given prefix followed by the drawn tokens.
    """
    config = resolve_config(config, settings)
    cond = _as_tokens("cond", cond)
    B, Lc = cond.shape
    x = cond.new_zeros(B, 0) if x is None else _as_tokens("x", x, B).to(cond.device)
    image = torch.cat((x, x.new_zeros(B, steps)), dim=1)
    seq = _token_buffer(cond, image, config.cfg_scale, null_cond)
    sampler = TokenSampler(B, config, generator)
    targets = range(Lc + x.shape[1], Lc + x.shape[1] + steps)
    decode_positions(gpt, seq, targets, sampler, None, callback, progress)
    return seq[:B, Lc:]


def complete_tokens(
    gpt: GPT,
    cond: Tensor,
    tokens: Tensor,
    known: Tensor,
    config: SamplingConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    progress: bool = False,
    null_cond: Tensor | None = None,
    **settings: Any,
) -> Tensor:
    """Image completion: keep the `known` tokens and draw the others, in raster order.

    Positions before the first unknown one form the prefix; later known tokens are forced
    (fed as context, never drawn). A position known in every row costs no draw; a position
    known in only some rows is drawn for the whole batch and overwritten where known.

    Args:
        gpt: The transformer, in eval mode.
        cond: Conditioning tokens `(B, Lc)`.
        tokens: Image tokens `(B, L)`; values at unknown positions are ignored.
        known: Boolean mask `(L,)` (shared) or `(B, L)`.
        config, generator, callback, progress, null_cond, **settings: As in
            `sample_tokens`.

    Returns:
        Completed image tokens `(B, L)`.
    """
    config = resolve_config(config, settings)
    cond = _as_tokens("cond", cond)
    B, Lc = cond.shape
    tokens = _as_tokens("tokens", tokens, B).to(cond.device)
    known = known.to(device=cond.device, dtype=torch.bool).expand(B, tokens.shape[1])
    seq = _token_buffer(cond, tokens, config.cfg_scale, null_cond)
    everywhere = known.all(dim=0).tolist()
    targets = [Lc + p for p, k in enumerate(everywhere) if not k]
    pad = cond.new_zeros(B, Lc)
    forced = None
    if known.any():
        forced = (torch.cat((pad, tokens), 1), torch.cat((pad.bool(), known), 1))
    sampler = TokenSampler(B, config, generator)
    decode_positions(gpt, seq, targets, sampler, forced, callback, progress)
    return seq[:B, Lc:]
