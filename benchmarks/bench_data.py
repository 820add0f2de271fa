"""Data loading speed: ImageNet-style JPEG decode + resize + random crop to 256x256 (items/s).

    python benchmarks/bench_data.py [--n 96] [--rounds 3] [--reference-venv /work/refvenv-data]

Files: `--n` JPEGs of ImageNet size (500x375 .. 500x333, quality 90) written to a temporary
folder from the D-RIN examples of ../shared/data (synthetic gradients without it). Compared on
the same files, alternating, through a `DataLoader(batch_size=16)` with 0 and 2 workers:

- `ours`: `taming.data.base.ImagePaths(size=256, random_crop=True)` (what `ImageNetTrain` runs);
- `original_chain`: the original's transform chain re-implemented inline: `PIL.Image.open` ->
  `convert("RGB")` -> `np.array` -> albumentations' SmallestMaxSize (`cv2.resize`, bilinear) +
  RandomCrop -> `x / 127.5 - 1` (needs OpenCV);
- `original` (with `--reference-venv`, prepared by `scripts/parity_data.py --setup`): the
  original `taming.data.base.ImagePaths` itself, timed in that venv (albumentations 0.4.3).

Prints a table and, with `--json`, a JSON line with items/s per (pipeline, workers) and the
load average.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

REPO = Path(__file__).resolve().parents[1]
SIZES = [(500, 375), (500, 333), (375, 500), (500, 400)]

_REFERENCE = r"""
import sys, time, types, random, json
sys.modules["imgaug"] = types.ModuleType("imgaug")
sys.modules["imgaug.augmenters"] = types.ModuleType("imgaug.augmenters")
sys.path.insert(0, sys.argv[1])
import torch
from torch.utils.data import DataLoader
from taming.data.base import ImagePaths
paths = open(sys.argv[2]).read().split()
out = {}
for workers in (0, 2):
    ds = ImagePaths(paths, size=256, random_crop=True)
    dl = DataLoader(ds, batch_size=16, num_workers=workers)
    for _ in dl: break
    t = time.perf_counter(); n = 0
    for b in dl: n += b["image"].shape[0]
    out[workers] = n / (time.perf_counter() - t)
print(json.dumps(out))
"""


def make_files(folder: Path, n: int) -> list[str]:
    shared = REPO.parent / "shared" / "data" / "drin_images"
    sources = sorted(shared.rglob("*.JPEG")) if shared.is_dir() else []
    paths = []
    for i in range(n):
        w, h = SIZES[i % len(SIZES)]
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB").resize((w, h))
        else:
            yy, xx = np.mgrid[0:h, 0:w]
            arr = np.stack([xx * 255 // w, yy * 255 // h, (xx + yy + 37 * i) % 256], -1)
            img = Image.fromarray(arr.astype(np.uint8))
        path = folder / f"n{i % 10:08d}_{i}.JPEG"
        img.save(path, quality=90)
        paths.append(str(path))
    return paths


class OriginalChain(Dataset):
    """The original ImagePaths transform chain, written out with PIL + cv2 (baseline)."""

    def __init__(self, paths: list[str], size: int = 256):
        import cv2

        self.cv2, self.paths, self.size = cv2, paths, size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> dict:
        import random

        image = Image.open(self.paths[i])
        if image.mode != "RGB":
            image = image.convert("RGB")
        image = np.array(image).astype(np.uint8)
        h, w = image.shape[:2]
        scale = self.size / float(min(w, h))
        if scale != 1.0:
            image = self.cv2.resize(image, (round(w * scale), round(h * scale)))
        h, w = image.shape[:2]
        top = int((h - self.size) * random.random())
        left = int((w - self.size) * random.random())
        image = image[top : top + self.size, left : left + self.size]
        return {"image": (image / 127.5 - 1.0).astype(np.float32), "file_path_": self.paths[i]}


def items_per_s(ds: Dataset, workers: int) -> float:
    dl = DataLoader(ds, batch_size=16, num_workers=workers, persistent_workers=workers > 0)
    for _ in dl:  # warm-up epoch (page cache, worker start)
        pass
    t0 = time.perf_counter()
    n = sum(batch["image"].shape[0] for batch in dl)
    return n / (time.perf_counter() - t0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=96, help="number of JPEG files")
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds (median)")
    parser.add_argument("--reference-venv", type=Path, help="also time the original ImagePaths")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from taming.data.base import ImagePaths
    from taming.data.cvresize import backend

    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        paths = make_files(Path(tmp), args.n)
        pipelines = {"ours": lambda: ImagePaths(paths, size=256, random_crop=True)}
        try:
            import cv2  # noqa: F401

            pipelines["original_chain"] = lambda: OriginalChain(paths)
        except ImportError:
            print("OpenCV not installed: no original_chain baseline")
        results: dict[str, dict[int, list[float]]] = {k: {0: [], 2: []} for k in pipelines}
        ref: dict[int, list[float]] = {0: [], 2: []}
        listing = Path(tmp) / "list.txt"
        listing.write_text("\n".join(paths))
        for _ in range(args.rounds):
            for workers in (0, 2):
                for name, make in pipelines.items():
                    results[name][workers].append(items_per_s(make(), workers))
            if args.reference_venv:
                py = args.reference_venv / "bin" / "python"
                orig = args.reference_venv / "orig"
                out = subprocess.run(
                    [str(py), "-c", _REFERENCE, str(orig), str(listing)],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                for k, v in json.loads(out.stdout.strip().splitlines()[-1]).items():
                    ref[int(k)].append(v)
    if args.reference_venv:
        results["original"] = ref
    load_after = os.getloadavg()[0]
    median = {k: {w: float(np.median(v)) for w, v in d.items() if v} for k, d in results.items()}
    print(f"{args.n} JPEGs ~500x375 -> 256x256 random crops, resize backend {backend()}")
    print(f"load average {load_before:.2f} -> {load_after:.2f}; median of {args.rounds} rounds")
    print(f"{'pipeline':<16}{'0 workers':>12}{'2 workers':>12}  (items/s)")
    for name, d in median.items():
        print(f"{name:<16}{d.get(0, float('nan')):>12.1f}{d.get(2, float('nan')):>12.1f}")
    if args.json:
        print(json.dumps({"items_per_s": median, "load": [load_before, load_after]}))


if __name__ == "__main__":
    sys.exit(main())
