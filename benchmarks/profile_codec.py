"""Where the codec's time goes: CPU time per aten op (and per convolution shape), ours vs the
original, for bench_codec's model and workloads.

Every aten call is timed with `time.thread_time()` (CPU time of this thread) inside a
`TorchDispatchMode`, with 1 thread by default: CPU time, unlike wall time, barely changes when
other processes compete for the cores, so the profile stays readable on a loaded shared
machine (it cannot show thread-synchronisation costs; bench_codec's 2-thread wall times do).
Convolutions are listed per shape with their GFLOP/s, which shows how close they are to the
core's peak.

    python benchmarks/profile_codec.py [--res 64] [--threads 1] [--reps 5] [--json]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import sys
import time

import torch
from torch.utils._python_dispatch import TorchDispatchMode

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_codec import build, inputs  # noqa: E402


class CpuTimeProfile(TorchDispatchMode):
    """Accumulates thread CPU seconds (and FLOPs for convolutions) per op key."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: collections.Counter = collections.Counter()
        self.flops: collections.Counter = collections.Counter()
        self.calls: collections.Counter = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        t0 = time.thread_time()
        out = func(*args, **(kwargs or {}))
        dt = time.thread_time() - t0
        key = str(func.overloadpacket).removeprefix("aten.")
        if key in ("convolution", "conv2d"):  # torch 2.13 dispatches conv2d itself
            x, w = args[0], args[1]
            key = f"conv {tuple(x.shape)} -> {w.shape[0]}ch k{w.shape[-1]}"
            self.flops[key] += 2 * out.numel() * w[0].numel()
        self.seconds[key] += dt
        self.calls[key] += 1
        return out


def profile(side: str, workload: str, batch: int, reps: int) -> dict:
    model = build(side)
    kind, res = workload.split("_")
    x, codes = inputs(int(res), batch)
    fn = (lambda: model.encode(x)) if kind == "encode" else (lambda: model.decode_code(codes))
    with torch.inference_mode():
        fn()
        with CpuTimeProfile() as prof:
            for _ in range(reps):
                fn()
    ops = {
        k: {
            "ms": round(v / reps * 1e3, 2),
            "calls": prof.calls[k] // reps,
            **({"gflops": round(prof.flops[k] / v / 1e9)} if prof.flops[k] else {}),
        }
        for k, v in prof.seconds.most_common()
    }
    conv_ms = sum(o["ms"] for k, o in ops.items() if k.startswith("conv "))
    return {"total_ms": round(sum(prof.seconds.values()) / reps * 1e3, 1),
            "conv_ms": round(conv_ms, 1), "ops": ops}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--res", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--reps", type=int, default=5)
    parser.add_argument("--top", type=int, default=8, help="ops listed per run")
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    out = {}
    for res in args.res:
        for kind in ("encode", "decode"):
            workload = f"{kind}_{res}"
            sides = {
                side: profile(side, workload, args.batch, args.reps)
                for side in ("ours", "original")
            }
            o, b = sides["ours"], sides["original"]
            ratio = b["total_ms"] / o["total_ms"]
            print(
                f"== {workload}: ours {o['total_ms']} ms CPU (conv {o['conv_ms']}), original "
                f"{b['total_ms']} ms (conv {b['conv_ms']}); ratio {ratio:.2f}x"
            )
            for side, p in sides.items():
                items = []
                for k, v in list(p["ops"].items())[: args.top]:
                    rate = f" {v['gflops']} GFLOP/s" if "gflops" in v else ""
                    items.append(f"{k} {v['ms']} ms x{v['calls']}{rate}")
                print(f"  {side}: " + "; ".join(items))
            out[workload] = sides
    if args.json:
        print(json.dumps(out))


if __name__ == "__main__":
    main()
