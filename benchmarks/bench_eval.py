"""FID Inception-v3 feature extraction speed (images per second), ours.

Batch 32 of 256x256 uint8 images (resized to 299 inside the network, as always), fp32,
2 threads, random weights in the real layout (speed does not depend on their values); the
median of `--rounds` timed batches after one warm-up. `--reference` also times the
reference form (`FIDInceptionV3`: BatchNorm unfolded, one conv per branch). torch-fidelity's
extractor is timed in the same units by `benchmarks/fidelity_parity.py` (it needs torchvision;
run that one with the reference venv).

    python benchmarks/bench_eval.py --json     # last line: a JSON object
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "benchmarks"))

from fidelity_parity import random_weights  # noqa: E402
from taming.metrics.inception import load_inception  # noqa: E402
from taming.metrics.inception_fast import FastInceptionV3  # noqa: E402


def images_per_s(fn, x: torch.Tensor, rounds: int) -> float:
    with torch.inference_mode():
        fn(x[:2])  # warm-up (kernel selection)
        times = []
        for _ in range(rounds):
            t0 = time.perf_counter()
            fn(x)
            times.append(time.perf_counter() - t0)
    return x.shape[0] / statistics.median(times)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256, help="input image side")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time the reference form")
    ap.add_argument("--json", action="store_true", help="last line: a JSON object")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "weights-inception-2015-12-05-6726825d.pth"
        random_weights(path)
        ref = load_inception(path)
    fast = FastInceptionV3(ref)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (args.batch, 3, args.size, args.size), generator=g).to(torch.uint8)
    result = {
        "torch": torch.__version__,
        "batch": args.batch,
        "threads": args.threads,
        "input": args.size,
        "ours_images_per_s": images_per_s(fast, x, args.rounds),
    }
    if args.reference:
        result["reference_form_images_per_s"] = images_per_s(ref, x, args.rounds)
    result["loadavg"] = os.getloadavg()[0]
    for k, v in result.items():
        if k.endswith("_per_s"):
            print(f"{k}: {v:.2f}")
    print(f"(load average {result['loadavg']:.1f})")
    if args.json:
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
