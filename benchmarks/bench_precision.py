"""`taming train --precision bf16-mixed` against fp32 on the demo: losses and speed.

Trains the demo VQGAN (`configs/vqgan/skimage_demo.yaml`, scikit-image photos, no LPIPS) for
`--steps` generator steps with `taming train`, once per precision and seed (seeds 0-4 by
default; the runs alternate fp32 / bf16-mixed so load changes hit both), and reads each run's
`metrics.csv`: the mean of the per-epoch training losses (`train/aeloss_epoch`,
`train/rec_loss_epoch`) over the run. bf16-mixed passes when, for each seed, its mean loss
differs from fp32's by no more than the fp32 run-to-run spread (max - min over seeds). Speed is
the wall time of each run divided by its steps (start-up included; the same for both).

bf16-mixed autocasts convolutions and matrix products to bf16 and keeps fp32 master weights; it
is faster only on CPUs with native bf16 instructions (AVX512_BF16/AMX).

    python benchmarks/bench_precision.py --steps 200 --json

prints a JSON object as its last line: per precision and seed the mean losses and s/step,
`fp32_spread`, `bf16_within_spread`, `speedup` (fp32 s/step over bf16 s/step, median over
seeds), the CPU and the load.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import cpu_info, loadavg_1m, median  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "vqgan" / "skimage_demo.yaml"
LOSSES = ("train/aeloss_epoch", "train/rec_loss_epoch")
PRECISIONS = ("32-true", "bf16-mixed")


def mean_losses(metrics_csv: Path) -> dict[str, float]:
    """Mean over the logged epochs of each training loss in `LOSSES`."""
    values: dict[str, list[float]] = {k: [] for k in LOSSES}
    with open(metrics_csv) as f:
        for row in csv.DictReader(f):
            for k in LOSSES:
                if row.get(k):
                    values[k].append(float(row[k]))
    return {k.split("/")[1]: sum(v) / len(v) for k, v in values.items() if v}


def train_once(precision: str, seed: int, steps: int, threads: int, logdir: Path) -> dict:
    taming = Path(sys.executable).with_name("taming")
    cmd = [str(taming) if taming.exists() else "taming", "train", "-b", str(CONFIG),
           "--precision", precision, "--max_steps", str(steps), "-s", str(seed),
           "-l", str(logdir), "--no-test"]  # fmt: skip
    env = dict(os.environ, OMP_NUM_THREADS=str(threads))
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    (run_dir,) = [p for p in logdir.iterdir() if p.is_dir()]
    out = mean_losses(run_dir / "metrics.csv")
    out["s_per_step"] = round(wall / steps, 3)
    shutil.rmtree(run_dir)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200, help="generator steps per run")
    parser.add_argument("--seeds", default="0,1,2,3,4")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    load_before = loadavg_1m()
    runs: dict[str, dict[int, dict]] = {p: {} for p in PRECISIONS}
    with tempfile.TemporaryDirectory(prefix="bench_precision_") as tmp:
        for i, seed in enumerate(seeds):
            for precision in PRECISIONS if i % 2 == 0 else PRECISIONS[::-1]:
                logdir = Path(tmp) / f"{precision}_{seed}"
                logdir.mkdir()
                runs[precision][seed] = train_once(
                    precision, seed, args.steps, args.threads, logdir
                )
                print(f"{precision} seed {seed}: {runs[precision][seed]}", flush=True)
    fp32, bf16 = runs["32-true"], runs["bf16-mixed"]
    result: dict[str, object] = {"steps": args.steps, "seeds": seeds, "runs": runs}
    for loss in ("aeloss_epoch", "rec_loss_epoch"):
        vals = [fp32[s][loss] for s in seeds]
        spread = max(vals) - min(vals)
        result[f"fp32_spread_{loss}"] = spread
        result[f"bf16_within_spread_{loss}"] = all(
            abs(bf16[s][loss] - fp32[s][loss]) <= spread for s in seeds
        )
    result["speedup"] = round(
        median([fp32[s]["s_per_step"] / bf16[s]["s_per_step"] for s in seeds]), 3
    )
    result["loadavg_1m"] = max(load_before, loadavg_1m())
    result.update(cpu_info())
    print(
        f"fp32 spread (aeloss) {result['fp32_spread_aeloss_epoch']:.4f}; bf16-mixed within it: "
        f"{result['bf16_within_spread_aeloss_epoch']}; speed-up {result['speedup']:.2f}x"
    )
    if args.json:
        print(json.dumps(result))


if __name__ == "__main__":
    main()
