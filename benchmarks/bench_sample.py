"""Sampling speed of the second stage: KV-cached, batched and sliding-window GPT decoding.

Model: GPT with 8 layers, 8 heads, width 512, vocabulary 1024, block 512, random weights, fp32,
`torch.set_num_threads(2)`; top-k 100, temperature 1, multinomial draws; one image = 256 tokens
after one SOS token. Sliding window: a conditioning grid of the image's size (segmentation-
style), window 16x16, i.e. sequences of 256 conditioning + up to 255 image tokens.

    python benchmarks/bench_sample.py --json [--baseline]

prints a JSON object as its last line with `s_per_image_b1`, `s_per_image_b8`,
`tokens_per_s_b1`, `tokens_per_s_b8`, `sliding_s_per_image` (16x16 grid: one window),
`sliding_32x32_s_per_image` (32x32 grid), `s_per_image_b1_bf16`, `s_per_image_b1_int8` and
`s_per_image_b1_w8a8` (opt-in bf16 / int8 decode weights, int8 weights with int8 activations;
part `lowp8`: the same at batch 8, `s_per_image_b8_<fmt>`),
with `b1_<fmt>_uses` saying which format the speed probe of
`GPT.to_low_precision` picked on this CPU: fp32 where the format is slower), the decode error
of each format (`logits_rel_err_<fmt>`, `greedy_agreement_<fmt>` vs fp32, token by token over
256 positions) and, with `--compile`, `compile_s` and `s_per_image_b1_compiled`.
`--baseline` adds faithful re-implementations of the original's slow samplers, timed on the same
machine: `Net2NetTransformer.sample` (full recompute per step, original attention math),
`sample_with_past` (cache re-concatenated every step, HF top-k/top-p filter) and the original
sliding window (one full 511-token forward per token; timed over `--baseline-forwards`
forwards and multiplied by the number of tokens, since every such forward costs the same),
plus the speed-up ratios; ours and the baseline are run alternately so that load changes hit
both. Times are medians over repeats (wall seconds, or process CPU seconds with `--cpu-time`;
`clock` says which). `loadavg_1m` is reported because other processes on a
2-core machine distort 2-thread timings badly; `--parts b1,b8` etc. splits a run.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import time
from collections.abc import Callable

import torch
import torch.nn.functional as F

from taming.sampling import (
    sample_sliding_window,
    sample_tokens,
    top_k_logits,
    top_k_top_p_filtering,
)
from taming.transformer.gpt import GPT, legacy_attn_mask

logger = logging.getLogger("bench_sample")

CONFIG = dict(vocab_size=1024, block_size=512, n_layer=8, n_head=8, n_embd=512)
TOP_K = 100
STEPS = 256
PARTS = ("b1", "b8", "sliding16", "sliding32", "lowp", "lowp8", "accuracy", "uncached")
LOW_PRECISION = ("bf16", "int8", "w8a8")


CLOCK: Callable[[], float] = time.perf_counter  # `--cpu-time`: time.process_time


def timed(fn: Callable[[], object], repeats: int) -> float:
    """Median time (wall, or process CPU with `--cpu-time`) of `repeats` calls."""
    times = []
    for _ in range(repeats):
        t0 = CLOCK()
        fn()
        times.append(CLOCK() - t0)
    times.sort()
    return times[len(times) // 2]


def timed_pair(
    ours: Callable[[], object], base: Callable[[], object], repeats: int
) -> tuple[float, float]:
    """Median times of two functions run alternately, so load changes hit both alike."""
    t = timed_group({"ours": ours, "base": base}, repeats)
    return t["ours"], t["base"]


def timed_group(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median times of several functions run in turn, `repeats` rounds."""
    times: dict[str, list[float]] = {k: [] for k in fns}
    for _ in range(repeats):
        for key, fn in fns.items():
            times[key].append(timed(fn, 1))
    return {k: sorted(v)[repeats // 2] for k, v in times.items()}


def with_format(gpt: GPT, fmt: str | None, fn: Callable[[], object]) -> Callable[[], object]:
    """`fn` run with decode weights `fmt` (set before, fp32 restored after)."""

    def run() -> object:
        gpt.decode_weight_format = fmt
        try:
            return fn()
        finally:
            gpt.decode_weight_format = None

    return run


@torch.inference_mode()
def decode_accuracy(gpt: GPT, fmt: str, steps: int = STEPS) -> tuple[float, float]:
    """`(max |logits - fp32| / max |fp32 logits|, greedy-token agreement)` of decode weights
    `fmt`, feeding one random sequence token by token (the sampling path)."""
    seq = torch.randint(0, CONFIG["vocab_size"], (1, steps), generator=torch.Generator())

    def logits(f: str | None) -> torch.Tensor:
        gpt.decode_weight_format = f
        cache = gpt.setup_cache(1, steps)
        out = [gpt.forward_cached(seq[:, n : n + 1], n, cache) for n in range(steps)]
        gpt.decode_weight_format = None
        return torch.cat(out, dim=1)  # (1, steps, vocab)

    ref, low = logits(None), logits(fmt)
    err = ((low - ref).abs().max() / ref.abs().max()).item()
    return err, (low.argmax(-1) == ref.argmax(-1)).float().mean().item()


# ------------------------------------------------------------------ the original's samplers


def original_block(blk, x, mask, layer_past=None):
    """One minGPT block with the original attention math; returns `(x, present)`."""
    B, T, C = x.shape
    a, h = blk.attn, blk.ln1(x)
    nh, hs = a.n_head, C // a.n_head
    k = a.key(h).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    q = a.query(h).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    v = a.value(h).view(B, T, nh, hs).transpose(1, 2)  # (B, nh, T, hs)
    present = torch.stack((k, v))
    if layer_past is not None:
        past_k, past_v = layer_past
        k, v = torch.cat((past_k, k), dim=-2), torch.cat((past_v, v), dim=-2)
    att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(hs))
    if layer_past is None:
        att = att.masked_fill(mask[:, :, :T, :T] == 0, float("-inf"))
    y = F.softmax(att, dim=-1) @ v  # (B, nh, T, hs)
    y = y.transpose(1, 2).contiguous().view(B, T, C)
    x = x + a.proj(y)
    return x + blk.mlp(blk.ln2(x)), present


def original_forward_with_past(gpt, mask, idx, past=None, past_length=None):
    """`GPT.forward_with_past`: the past list is re-concatenated on every call."""
    x = gpt.tok_emb(idx)
    if past is not None:
        past = torch.cat(past, dim=-2)  # (n_layer, 2, B, nh, past_length, hs)
        x = x + gpt.pos_emb[:, past_length, :]
    else:
        x = x + gpt.pos_emb[:, : idx.shape[1], :]
    presents = []
    for n, blk in enumerate(gpt.blocks):
        x, present = original_block(blk, x, mask, None if past is None else past[n])
        presents.append(present)
    return gpt.head(gpt.ln_f(x)), torch.stack(presents)


def original_forward(gpt, mask, idx):
    return original_forward_with_past(gpt, mask, idx)[0]


@torch.no_grad()
def original_sample(gpt, mask, cond, steps, top_k):
    """`Net2NetTransformer.sample`: full forward of the whole prefix per token."""
    x = cond
    for _ in range(steps):
        logits = original_forward(gpt, mask, x)[:, -1, :] / 1.0
        probs = F.softmax(top_k_logits(logits, top_k), dim=-1)
        x = torch.cat((x, torch.multinomial(probs, num_samples=1)), dim=1)
    return x[:, cond.shape[1] :]


@torch.no_grad()
def original_sample_with_past(gpt, mask, cond, steps, top_k, top_p=1.0):
    """`sample_with_past` of `scripts/sample_fast.py` (HF 4.3.1 filter, p=1 pass included)."""
    x, sample, past = cond, cond, None
    for n in range(steps):
        logits, present = original_forward_with_past(
            gpt, mask, x, past=past, past_length=n + cond.shape[1] - 1
        )
        past = [present] if past is None else past + [present]
        logits = top_k_top_p_filtering(logits[:, -1, :] / 1.0, top_k=top_k, top_p=top_p)
        x = torch.multinomial(F.softmax(logits, dim=-1), num_samples=1)
        sample = torch.cat((sample, x), dim=1)
    return sample[:, cond.shape[1] :]


@torch.no_grad()
def original_sliding_forward_time(gpt, mask, n_forwards: int) -> float:
    """Seconds per token of the original sliding window: one 511-token forward + draw."""
    seq = torch.randint(0, CONFIG["vocab_size"], (1, 512))
    t0 = CLOCK()
    for _ in range(n_forwards):
        logits = original_forward(gpt, mask, seq[:, :-1])
        logits = logits[:, -256:, :].reshape(1, 16, 16, -1)[:, 8, 8, :]
        probs = F.softmax(top_k_logits(logits, TOP_K), dim=-1)
        torch.multinomial(probs, num_samples=1)
    return (CLOCK() - t0) / n_forwards


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    parser.add_argument("--baseline", action="store_true", help="also time the original's ways")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3, help="timed runs per measurement")
    parser.add_argument("--baseline-forwards", type=int, default=6)
    parser.add_argument(
        "--compile", action="store_true", help="also time a torch.compile'd decode step"
    )
    parser.add_argument(
        "--cpu-time",
        action="store_true",
        help="time process CPU seconds instead of wall seconds (for a machine loaded by "
        "others; with --threads 1 it is the work done, whatever the waiting)",
    )
    parser.add_argument(
        "--profile",
        choices=["fp32", *LOW_PRECISION],
        default=None,
        help="print torch.profiler's top operators (self CPU time) of 64 batch-1 steps",
    )
    parser.add_argument(
        "--parts",
        default=",".join(PARTS),
        help=f"comma-separated subset of {','.join(PARTS)} (to split a run over quiet periods)",
    )
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    if parts - set(PARTS):
        parser.error(f"unknown parts: {sorted(parts - set(PARTS))}")
    logging.basicConfig(level=logging.INFO, format="%(message)s")

    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.cpu_time else time.perf_counter
    torch.manual_seed(0)
    gpt = GPT(**CONFIG).eval()
    res: dict[str, float | str] = {}

    def record(key: str, value: float) -> None:
        res[key] = round(value, 4)
        logger.info("%-40s %10.4f", key, value)

    mask = legacy_attn_mask(CONFIG["block_size"])
    cgrid16 = torch.randint(0, CONFIG["vocab_size"], (1, 16, 16))
    cgrid32 = torch.randint(0, CONFIG["vocab_size"], (1, 32, 32))
    # our samplers enter inference mode themselves; the originals run under no_grad
    for batch in [b for b in (1, 8) if f"b{b}" in parts]:
        cond = torch.zeros(batch, 1, dtype=torch.long)
        sample_tokens(gpt, cond, 32, top_k=TOP_K)  # warm-up (packs the decode weights)
        ours = lambda cond=cond: sample_tokens(gpt, cond, STEPS, top_k=TOP_K)  # noqa: E731
        if args.baseline:
            base = lambda cond=cond: original_sample_with_past(gpt, mask, cond, STEPS, TOP_K)  # noqa: E731
            t, t_base = timed_pair(ours, base, args.repeats)
            record(f"baseline_with_past_s_per_image_b{batch}", t_base / batch)
            record(f"speedup_b{batch}", t_base / t)
        else:
            t = timed(ours, args.repeats)
        record(f"s_per_image_b{batch}", t / batch)
        record(f"tokens_per_s_b{batch}", STEPS * batch / t)

    for size, cgrid in ((16, cgrid16), (32, cgrid32)):
        if f"sliding{size}" not in parts:
            continue
        key = "sliding_s_per_image" if size == 16 else "sliding_32x32_s_per_image"
        ours = lambda size=size, cgrid=cgrid: sample_sliding_window(  # noqa: E731
            gpt, (size, size), cond_grid=cgrid, top_k=TOP_K
        )
        reps = args.repeats if size == 16 else 1
        if args.baseline:  # alternate our run with timed original forwards
            n_fwd = args.baseline_forwards
            runs = [
                (timed(ours, 1), original_sliding_forward_time(gpt, mask, n_fwd))
                for _ in range(reps)
            ]
            t = sorted(r[0] for r in runs)[reps // 2]
            per_token = sorted(r[1] for r in runs)[reps // 2]
            record("baseline_" + key, per_token * size * size)
            record("speedup_" + key.removesuffix("_s_per_image"), per_token * size**2 / t)
        else:
            t = timed(ours, reps)
        record(key, t)

    cond = torch.zeros(1, 1, dtype=torch.long)
    for batch in [b for b, part in ((1, "lowp"), (8, "lowp8")) if part in parts]:
        # fp32, bf16, int8, w8a8 (and the original) alternately at this batch
        lcond = torch.zeros(batch, 1, dtype=torch.long)
        fns = {}
        for fmt in LOW_PRECISION:  # what a user gets: fp32 where the format is slower here
            used = gpt.to_low_precision(fmt, rows=batch).decode_weight_format or "fp32"
            res[f"b{batch}_{fmt}_uses"] = used
            logger.info("%-40s %10s", f"b{batch}_{fmt}_uses", used)
            sample = lambda c=lcond: sample_tokens(gpt, c, STEPS, top_k=TOP_K)  # noqa: E731
            fns[fmt] = with_format(gpt, gpt.decode_weight_format, sample)
            fns[fmt]()  # warm-up: builds this format's decode weights
            gpt.to_low_precision(None)
        fns["fp32"] = lambda c=lcond: sample_tokens(gpt, c, STEPS, top_k=TOP_K)
        if args.baseline:
            fns["base"] = lambda c=lcond: original_sample_with_past(gpt, mask, c, STEPS, TOP_K)
        t = timed_group(fns, args.repeats)
        for fmt in LOW_PRECISION:
            record(f"s_per_image_b{batch}_{fmt}", t[fmt] / batch)
        if args.baseline:
            record(f"baseline_with_past_s_per_image_b{batch}_lowp_run", t["base"] / batch)
            for fmt in ("fp32", *LOW_PRECISION):
                record(f"speedup_b{batch}_{fmt}_lowp_run", t["base"] / t[fmt])

    if "accuracy" in parts:
        for fmt in LOW_PRECISION:
            err, agree = decode_accuracy(gpt, fmt)
            record(f"logits_rel_err_{fmt}", err)
            record(f"greedy_agreement_{fmt}", agree)

    if args.compile:
        from taming.transformer.gpt import cpp_compiler

        if cpp_compiler() is None:
            logger.info("compile: skipped, no C++ compiler (inductor needs one on CPU)")
        else:
            gpt.compile_decode()
            t0 = time.perf_counter()
            sample_tokens(gpt, cond, 8, top_k=TOP_K)  # compiles (positions are dynamic)
            record("compile_s", time.perf_counter() - t0)
            compiled = lambda: sample_tokens(gpt, cond, STEPS, top_k=TOP_K)  # noqa: E731
            eager = with_format(gpt, None, compiled)
            gpt.compile_decode(False)
            eager_t = timed(eager, 1)  # eager, then compiled, alternately
            gpt.compile_decode()
            t = timed_group({"compiled": compiled}, args.repeats)["compiled"]
            record("s_per_image_b1_compiled", t)
            record("s_per_image_b1_eager_compile_run", eager_t)
            gpt.compile_decode(False)

    if args.profile is not None:
        fmt = None if args.profile == "fp32" else args.profile
        gpt.to_low_precision(fmt, only_if_faster=False)
        sample_tokens(gpt, cond, 8, top_k=TOP_K)  # warm-up
        with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
            sample_tokens(gpt, cond, 64, top_k=TOP_K)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
        gpt.to_low_precision(None)

    if args.baseline and "uncached" in parts:
        t = timed(lambda: original_sample(gpt, mask, cond, STEPS, TOP_K), 1)
        record("baseline_uncached_s_per_image_b1", t)

    res["clock"] = "cpu" if args.cpu_time else "wall"
    res["threads"] = args.threads
    res["loadavg_1m"] = round(os.getloadavg()[0], 2)  # > 0 means other processes competed
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
