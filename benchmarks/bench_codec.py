"""Encode/decode throughput of the VQGAN first stage (images per second), ours vs the original.

Config (issue 2's speed note): ch 64, ch_mult [1,1,2,2], num_res_blocks 2, attn_resolutions [8],
z_channels 64, embed_dim 64, n_embed 1024, resolution 64; batch 4, fp32, 2 threads; the same
weights are run at 64x64 and 128x128. `encode` = encoder + quant_conv + quantizer (indices);
`decode` = codebook lookup + post_quant_conv + decoder.

`--baseline` also times `original_codec.OriginalCodec` (a literal re-implementation of the
original's `diffusionmodules/model.py` + `VectorQuantizer2` path, same weights) in the same run,
alternating with ours every round; times are medians, the ratio is the median over rounds of
original time / our time. Peak RSS of each side comes from a child process that runs only that
side's workload. `--dtype bf16` and `--compile` also time the opt-in paths (alternating with
the others): `ours_bf16` / `ours_compiled` img/s, their ratio to ours, and `compile_s` (the first
call per workload, which compiles).

    python benchmarks/bench_codec.py --baseline --json

prints one JSON line per workload last (encode_64, decode_64, encode_128, decode_128):
`ours` / `original` (images/s), `ratio`, `peak_rss_mib_ours` / `peak_rss_mib_original`, the
CPU (`cpu`, `isa`, `native_bf16`) and `loadavg_1m` (other processes distort 2-thread timings on
a shared 2-core machine).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import (  # noqa: E402
    alternate,
    cpu_info,
    loadavg_1m,
    median,
    paired_ratio,
    peak_rss_mib,
    print_rss_probe,
    rss_mark,
    workload_line,
)
from original_codec import OriginalCodec  # noqa: E402
from taming.autoencoder.inference import (  # noqa: E402
    compile_first_stage,
    native_bf16,
    set_first_stage_dtype,
)
from taming.autoencoder.vqmodel import VQModel  # noqa: E402

logger = logging.getLogger("bench_codec")

DDCONFIG = dict(
    double_z=False,
    z_channels=64,
    resolution=64,
    in_channels=3,
    out_ch=3,
    ch=64,
    ch_mult=[1, 1, 2, 2],
    num_res_blocks=2,
    attn_resolutions=[8],
    dropout=0.0,
)
WORKLOADS = ("encode_64", "decode_64", "encode_128", "decode_128")
SIDES = ("ours", "original")


def build(side: str, seed: int = 0) -> torch.nn.Module:
    """The speed-note VQGAN (ours, ours_bf16, ours_compiled) or the original's path."""
    torch.manual_seed(seed)
    model = VQModel(ddconfig=DDCONFIG, lossconfig=None, n_embed=1024, embed_dim=64).eval()
    if side == "original":
        return OriginalCodec.from_vqmodel(model)
    if side == "ours_bf16":
        set_first_stage_dtype(model, "bf16", force=True)
    elif side == "ours_compiled" and not compile_first_stage(model):
        raise SystemExit("--compile: no C++ compiler for inductor")
    return model


def inputs(res: int, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of images in [-1, 1] and the codes (B, res/8, res/8) that `decode` gets."""
    x = torch.rand(batch, 3, res, res, generator=torch.Generator().manual_seed(res)) * 2 - 1
    codes = torch.randint(0, 1024, (batch, res // 8, res // 8), generator=torch.Generator())
    return x, codes


def runner(model: torch.nn.Module, workload: str, batch: int):
    kind, res = workload.split("_")
    x, codes = inputs(int(res), batch)
    if kind == "encode":
        return lambda: model.encode(x)
    return lambda: model.decode_code(codes)


def rss_probe(side: str, workload: str, batch: int) -> None:
    """Child process: build one side, run one workload twice, print the peak RSS."""
    model = build(side)
    fn = runner(model, workload, batch)
    mark = rss_mark()
    with torch.inference_mode():
        fn()
        fn()
    print_rss_probe(mark)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON lines at the end")
    parser.add_argument("--baseline", action="store_true", help="also time the original's path")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=9, help="timed calls per side and workload")
    parser.add_argument("--workloads", default=",".join(WORKLOADS))
    parser.add_argument("--dtype", choices=["bf16"], help="also time ours with a bf16 first stage")
    parser.add_argument("--compile", action="store_true", help="also time ours, torch.compiled")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child runs")
    parser.add_argument("--rss-probe", nargs=2, help=argparse.SUPPRESS)  # SIDE WORKLOAD
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.rss_probe:
        rss_probe(*args.rss_probe, args.batch)
        return

    workloads = [w for w in args.workloads.split(",") if w]
    sides = list(SIDES if args.baseline else SIDES[:1])
    extra = (["ours_bf16"] if args.dtype == "bf16" else []) + (
        ["ours_compiled"] if args.compile else []
    )
    if "ours_bf16" in extra and not native_bf16():
        print("note: this CPU has no native bf16; ours_bf16 is emulated (slower)")
    models = {side: build(side) for side in sides + extra}
    cpu = cpu_info()
    print(f"CPU: {cpu['cpu']} ({cpu['isa']}, native bf16: {cpu['native_bf16']}); "
          f"{args.threads} threads, batch {args.batch}; load {loadavg_1m()}")  # fmt: skip
    lines = []
    for workload in workloads:
        load_before = loadavg_1m()
        with torch.inference_mode():
            runners = {side: runner(models[side], workload, args.batch) for side in sides + extra}
            first = {}
            for side in extra:  # the first call of a compiled model compiles
                t0 = time.perf_counter()
                runners[side]()
                first[side] = time.perf_counter() - t0
            times = alternate(runners, args.rounds, warmup=2)
        ips = {side: round(args.batch / median(times[side]), 2) for side in sides + extra}
        opt_in: dict[str, object] = {}
        for side in extra:
            opt_in[side] = ips[side]
            opt_in[f"{side}_vs_ours"] = round(paired_ratio(times["ours"], times[side]), 3)
            if side == "ours_compiled":
                opt_in["compile_s"] = round(first[side], 1)
            note = f" (compile {first[side]:.0f} s)" if side == "ours_compiled" else ""
            print(f"  {side}: {ips[side]:.1f} img/s, {opt_in[f'{side}_vs_ours']:.2f}x ours{note}")
        ratio = round(paired_ratio(times["original"], times["ours"]), 3) if args.baseline else None
        msg = f"{workload}: ours {ips['ours']:.1f} img/s"
        if args.baseline:
            msg += f", original {ips['original']:.1f} img/s, ratio {ratio:.2f}x"
        print(msg + f" (load {load_before} -> {loadavg_1m()})")
        lines.append((workload, ips, ratio, max(load_before, loadavg_1m()), opt_in))
    out = []
    for workload, ips, ratio, load, opt_in in lines:
        rss = {
            side: None
            if args.no_rss
            else peak_rss_mib(
                __file__,
                [
                    "--rss-probe",
                    side,
                    workload,
                    "--batch",
                    str(args.batch),
                    "--threads",
                    str(args.threads),
                ],
            )  # fmt: skip
            for side in sides
        }
        out.append(
            workload_line(
                "codec",
                workload,
                "img/s",
                ips["ours"],
                ips.get("original"),
                ratio,
                rss["ours"],
                rss.get("original"),
                batch=args.batch,
                threads=args.threads,
                loadavg_1m=load,
                **opt_in,
                **cpu,
            )  # fmt: skip
        )
    if args.json:
        print("\n".join(out))


if __name__ == "__main__":
    main()
