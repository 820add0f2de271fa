"""Which decode-weight format is faster on this CPU: the model's own one-token step, timed.

`GPT.to_low_precision(only_if_faster=True)` keeps a low-precision format only where decoding
with it is faster than float32 here. Timing the Linears alone (`cpu_matmul.format_speed`) once
chose wrongly: in one `make bench` run (2-core AMD EPYC, avx512_bf16) oneDNN's bf16 products
took 3.93 against 4.22 ms fp32 for one row through every Linear, yet batch-1 sampling with them
took 1.72 against 1.44 s per 256-token image. Decoding interleaves the products with attention
over the KV cache, LayerNorms and the format's conversions, and what the products leave in the
caches matters for those. So the decision times what decoding runs: `forward_cached`, one token
per row at the rows that will be decoded together, in both formats, alternating.
"""

from __future__ import annotations

import time
from typing import Protocol

import torch
from torch import Tensor

__all__ = ["step_seconds"]


class _Decoder(Protocol):  # the parts of `GPT` used here (no import: gpt.py imports this)
    vocab_size: int
    block_size: int
    decode_weight_format: str | None

    def setup_cache(self, batch_size: int, max_len: int | None = None) -> list: ...

    def forward_cached(self, idx: Tensor, input_pos: int, cache: list) -> Tensor: ...


def step_seconds(
    gpt: _Decoder, fmt: str, rows: int = 1, steps: int = 6, rounds: int = 4
) -> tuple[float, float]:
    """`(float32, fmt)` seconds per one-token decode step at `rows` rows: the least over
    `rounds` alternating runs of `steps` steps (after one untimed run each, which also builds the
    format's weights). The model must be in eval mode; its `decode_weight_format` is restored.

    Wall time, because that is what sampling waits for; the minimum, because on a shared
    machine other processes only ever add time. Random token ids: the time does not depend
    on them. About 50 steps in all (~0.3 s for the 8 x 512 benchmark GPT at one row).
    """
    steps = max(1, min(steps, gpt.block_size))
    previous = gpt.decode_weight_format
    idx = torch.randint(0, gpt.vocab_size, (rows, 1), generator=torch.Generator().manual_seed(0))
    caches = {}
    times: dict[str | None, list[float]] = {None: [], fmt: []}
    try:
        for n in range(rounds + 1):
            for f in (None, fmt):
                gpt.decode_weight_format = f
                if f not in caches:
                    caches[f] = gpt.setup_cache(rows, steps)
                    idx = idx.to(caches[f][0].k_cache.device)  # the model's device, once
                t0 = time.perf_counter()
                for pos in range(steps):
                    gpt.forward_cached(idx, pos, caches[f])
                if n > 0:
                    times[f].append(time.perf_counter() - t0)
    finally:
        gpt.decode_weight_format = previous
    return min(times[None]) / steps, min(times[fmt]) / steps
