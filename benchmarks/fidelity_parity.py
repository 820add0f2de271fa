"""Parity of taming.metrics' FID / KID / IS with torch-fidelity, and extractor speed.

Run with a Python that has torch-fidelity (it needs torchvision), e.g. the shared reference
venv; nothing of this package needs torchvision:

    /work/refvenv/bin/python benchmarks/fidelity_parity.py [--json] [--data DIR]

1. Random weights in the file layout of torch-fidelity's `weights-inception-2015-12-05-
   6726825d.pth` (He-scaled convolutions, random BatchNorm statistics) are written to a
   temporary folder, under both its name and pytorch-fid's; torch-fidelity's
   `FeatureExtractorInceptionV3` loads them strictly (so the layouts agree).
2. Two folders of real photos are made (center crops of `<data>/ade20k_images` and
   `<data>/coco_images`, 256x256 PNG), and torch-fidelity's `calculate_metrics` (FID, KID,
   IS) is compared with `taming.metrics.calculate_metrics` on them; pass: relative difference
   <= 1e-3. A third run uses the raw ade20k JPEGs (mixed sizes; torch-fidelity with batch 1).
3. pool3 features of one batch: max |ours - theirs| / max |theirs| <= 1e-4.
4. Speed: images/s of torch-fidelity's extractor and ours at batch 32 on 2 threads, rounds
   alternated in this process (same torch), median of 3.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

from taming.metrics.extractor import InceptionExtractor  # noqa: E402
from taming.metrics.fidelity import calculate_metrics  # noqa: E402
from taming.metrics.inception import FIDInceptionV3  # noqa: E402
from taming.metrics.sources import FolderSource  # noqa: E402

TF_FILE = "weights-inception-2015-12-05-6726825d.pth"
PT_FILE = "pt_inception-2015-12-05-6726825d.pth"


def random_weights(path: Path, seed: int = 0) -> None:
    """A state dict in the FID Inception layout with activations that neither die nor blow
    up over the 94 layers (He-scaled convs, BatchNorm near identity)."""
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in FIDInceptionV3().state_dict().items():
        if k.endswith("conv.weight"):
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif k.endswith(("bn.weight", "running_var")):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith(("bn.bias", "running_mean")):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k == "fc.weight":
            sd[k] = torch.randn(v.shape, generator=g) * 0.2
        elif k == "fc.bias":
            sd[k] = torch.randn(v.shape, generator=g)
        else:  # num_batches_tracked
            sd[k] = v
        if k.startswith("Mixed_7c.") and k.endswith(("bn.weight", "bn.bias")):
            sd[k] = sd[k] * 0.3  # pool3 of ~0.2, near the real network's scale
    torch.save(sd, path)


def make_folder(src: Path, dst: Path, size: int = 256) -> int:
    dst.mkdir(parents=True, exist_ok=True)
    n = 0
    for p in sorted(src.iterdir()):
        if p.suffix.lower() not in (".jpg", ".jpeg", ".png"):
            continue
        img = Image.open(p).convert("RGB")
        s = size / min(img.size)
        img = img.resize(
            (max(size, round(img.width * s)), max(size, round(img.height * s))),
            Image.Resampling.BICUBIC,
        )
        left, top = (img.width - size) // 2, (img.height - size) // 2
        img.crop((left, top, left + size, top + size)).save(dst / f"{p.stem}.png")
        n += 1
    return n


def rel(a: float, b: float) -> float:
    return abs(a - b) / max(abs(b), 1e-30)


def theirs(a: str, b: str, weights: Path, kid_subset_size: int, batch_size: int) -> dict:
    import torch_fidelity

    m = torch_fidelity.calculate_metrics(
        input1=a,
        input2=b,
        cuda=False,
        isc=True,
        fid=True,
        kid=True,
        verbose=False,
        feature_extractor_weights_path=str(weights),
        kid_subset_size=kid_subset_size,
        batch_size=batch_size,
        cache=False,
        save_cpu_ram=True,
    )
    return {
        "fid": m["frechet_inception_distance"],
        "kid_mean": m["kernel_inception_distance_mean"],
        "kid_std": m["kernel_inception_distance_std"],
        "isc_mean": m["inception_score_mean"],
        "isc_std": m["inception_score_std"],
    }


def ours(a: str, b: str, weights: Path, kid_subset_size: int) -> dict:
    return calculate_metrics(
        a,
        b,
        fid=True,
        kid=True,
        isc=True,
        inception_weights=weights,
        device="cpu",
        kid_subset_size=kid_subset_size,
        cache=False,
        progress=False,
    )


def compare(name: str, t: dict, o: dict, tol: float = 1e-3) -> dict:
    rows = {}
    for k in ("fid", "kid_mean", "isc_mean", "kid_std", "isc_std"):
        rows[k] = {"torch_fidelity": t[k], "ours": o[k], "rel": rel(o[k], t[k])}
    ok = all(rows[k]["rel"] <= tol for k in ("fid", "kid_mean", "isc_mean"))
    print(
        f"{name}: "
        + ", ".join(
            f"{k} {v['torch_fidelity']:.6g} vs {v['ours']:.6g} (rel {v['rel']:.1e})"
            for k, v in rows.items()
        )
        + ("  OK" if ok else "  FAIL")
    )
    return {"metrics": rows, "pass": ok}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default=str(REPO.parent / "shared" / "data"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", action="store_true", help="last line: a JSON object")
    args = ap.parse_args()

    from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3

    torch.set_num_threads(args.threads)
    data = Path(args.data)
    result: dict = {"torch": torch.__version__, "threads": args.threads}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        random_weights(tmp / TF_FILE)
        os.link(tmp / TF_FILE, tmp / PT_FILE)
        tf_ext = FeatureExtractorInceptionV3(
            "inception-v3-compat",
            ["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(tmp / TF_FILE),
        )
        a, b = tmp / "ade20k_256", tmp / "coco_256"
        na = make_folder(data / "ade20k_images", a)
        nb = make_folder(data / "coco_images", b)
        m = min(na, nb) - 5
        print(f"folders: {na} and {nb} images (256x256 PNG); KID subset size {m}")

        t0 = time.perf_counter()
        t = theirs(str(a), str(b), tmp / TF_FILE, m, 32)
        t_tf = time.perf_counter() - t0
        t0 = time.perf_counter()
        o = ours(str(a), str(b), tmp / PT_FILE, m)
        t_ours = time.perf_counter() - t0
        result["png_256"] = compare("256px PNG folders", t, o)
        result["png_256"]["seconds"] = {"torch_fidelity": t_tf, "ours": t_ours}

        raw = data / "ade20k_images"
        t = theirs(str(raw), str(a), tmp / TF_FILE, m, 1)  # mixed sizes: one per batch
        o = ours(str(raw), str(a), tmp / TF_FILE, m)
        result["raw_jpeg"] = compare("raw JPEGs (mixed sizes) vs PNGs", t, o)

        # pool3 features of one batch
        ex = InceptionExtractor(tmp / TF_FILE, device="cpu", batch_size=args.batch)
        src = FolderSource(a)
        batch = next(src.batches(min(args.batch, len(src))))
        with torch.no_grad():
            ft = tf_ext(batch)[0].double()
        fo = ex(batch)[0].double()
        feat_rel = float((fo - ft).abs().max() / ft.abs().max())
        print(
            f"pool3 features: max|ours - torch-fidelity| / max|torch-fidelity| = {feat_rel:.2e}"
            + ("  OK" if feat_rel <= 1e-4 else "  FAIL")
        )
        result["pool3_rel_max"] = feat_rel

        # speed at batch 32, alternating rounds
        imgs = torch.cat([batch] * math.ceil(args.batch / batch.shape[0]))[: args.batch]
        times: dict[str, list[float]] = {"torch_fidelity": [], "ours": []}
        with torch.no_grad():
            tf_ext(imgs[:2])
            ex(imgs[:2])  # warm-up
            for _ in range(args.rounds):
                for name, fn in (("torch_fidelity", tf_ext), ("ours", ex)):
                    t0 = time.perf_counter()
                    fn(imgs)
                    times[name].append(time.perf_counter() - t0)
        speed = {k: args.batch / statistics.median(v) for k, v in times.items()}
        result["images_per_s"] = speed
        result["loadavg"] = os.getloadavg()[0]
        print(
            f"extractor speed, batch {args.batch}, {args.threads} threads (load "
            f"{result['loadavg']:.1f}): torch-fidelity {speed['torch_fidelity']:.2f} img/s, "
            f"ours {speed['ours']:.2f} img/s ({speed['ours'] / speed['torch_fidelity']:.2f}x)"
        )
    ok = (
        result["png_256"]["pass"]
        and result["raw_jpeg"]["pass"]
        and result["pool3_rel_max"] <= 1e-4
        and speed["ours"] >= speed["torch_fidelity"]
    )
    result["pass"] = bool(ok)
    if args.json:
        print(json.dumps(result, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
