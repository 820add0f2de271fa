"""`taming demo`: train a small VQGAN and then a small transformer on its codes, on a CPU.

    taming demo                      # ~7 minutes on 2 CPU cores; writes demo_out/
    taming demo --steps 20 --out /tmp/demo

Uses scikit-image's bundled photos (no download). Writes input/reconstruction grids (before and
after training), `metrics.json` (PSNR before/after, codebook usage, transformer loss
before/after), a VQGAN checkpoint loadable with `taming.load(<out>)`, transformer samples, a
completion grid and a 2x-wide sliding-window sample, and a transformer run folder for
`taming sample -r <out>/transformer`, then prints where they are. `--steps` scales both stages.
See `taming.train.demo`.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="train a small VQGAN and transformer on embedded photos (no download), write PNGs",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    p.add_argument("--steps", type=int, default=None, help="training steps (default 1000)")
    p.add_argument("--size", type=int, default=64, help="crop size in pixels (default 64)")
    p.add_argument("--batch-size", type=int, default=4, help="batch size (default 4)")
    p.add_argument(
        "--max-minutes",
        type=float,
        default=6.0,
        help="stop VQGAN training after this many minutes (default 6; 0: no limit)",
    )
    p.add_argument(
        "--transformer-steps",
        type=int,
        default=None,
        help="transformer training steps (default: 900, scaled with --steps)",
    )
    p.add_argument(
        "--transformer-max-minutes",
        type=float,
        default=2.2,
        help="stop transformer training after this many minutes (default 2.2; 0: no limit)",
    )
    p.add_argument("--seed", type=int, default=23)
    p.add_argument(
        "--lpips",
        action="store_true",
        help="add the LPIPS perceptual loss (needs the VGG16/LPIPS weights; slower)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from taming.train.demo import DemoContext, run_demo

    ctx = DemoContext(
        out=Path(args.out),
        size=args.size,
        batch_size=args.batch_size,
        seed=args.seed,
        perceptual=args.lpips,
        max_minutes=args.max_minutes or None,
        transformer_steps=args.transformer_steps,
        transformer_max_minutes=args.transformer_max_minutes or None,
        progress=not args.no_progress,
    )
    if args.steps is not None:
        if args.steps < 1:
            raise ValueError("--steps must be >= 1")
        ctx.steps = args.steps
    for res in run_demo(ctx):
        m = res.metrics
        print(f"\n{res.name}: {json.dumps(m)}")
        if "psnr_before" in m:
            print(
                f"{res.name}: {m['steps']} steps in {m['seconds']:.0f} s; PSNR "
                f"{m['psnr_before']:.2f} -> {m['psnr_after']:.2f} dB ({m['psnr_gain']:+.2f} dB), "
                f"codebook usage {m['codebook_usage']:.0%}"
            )
        for label, path in res.files.items():
            print(f"  {label + ':':26s} {path}")
        if "loss_before" in m:
            print(
                f"{res.name}: {m['steps']} steps in {m['seconds']:.0f} s; token loss "
                f"{m['loss_before']:.2f} -> {m['loss_after']:.2f} nats"
            )
    print(f"\nload the tokenizer with: taming.load({str(ctx.out)!r})")
    if (ctx.out / "transformer").is_dir():
        print(f"sample more images with: taming sample -r {ctx.out / 'transformer'} -n 16")
    return 0
