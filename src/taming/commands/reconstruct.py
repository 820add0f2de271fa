"""`taming reconstruct`: encode and decode images with a first stage, write what it made.

    taming reconstruct --model logs/<vqgan run> photo.jpg more_photos/ -o recon/
    taming reconstruct --model logs/<transformer run> photos/ -o recon/ --size 256 --json

For each input image (files, or every image below a folder), in `DIR` (folders keep their
layout under `DIR/<folder name>/`):

- `<name>.png`: the reconstruction;
- `<name>_pair.png`: input and reconstruction side by side;
- `<name>_codes.npy`: the token grid `(h, w)` (int64 codebook indices, raster order);

plus `summary.json` (per image: files, size, PSNR) and, when all images have one size, a
`grid.png` of the first 32 pairs. Images keep their size (cut to multiples of the first
stage's factor f) unless `--size` is given (scaled to cover it, then center-cropped).
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "reconstruct",
        help="encode + decode images with a first stage (PNGs, pairs, token grids)",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", required=True, metavar="RUN", help="first stage or transformer run")
    p.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
    p.add_argument("-o", "--outdir", required=True, metavar="DIR", help="output folder")
    p.add_argument("--size", type=int, default=None, help="resize and center-crop to this side")
    p.add_argument("--unsafe", action="store_true", help="allow checkpoints that may run code")
    p.add_argument(
        "--dtype", choices=["fp32", "bf16"], default="fp32", help="opt-in: bf16 first stage"
    )
    p.add_argument("--compile", action="store_true", help="opt-in: torch.compile the first stage")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    p.set_defaults(func=run)


def _collect(inputs: list[str]) -> list[tuple[Path, Path]]:
    """`(image file, output stem relative to DIR)` for every input."""
    from taming.data.folder import find_images

    out: list[tuple[Path, Path]] = []
    for spec in inputs:
        p = Path(spec)
        if p.is_dir():
            files = [Path(f) for f in find_images(p)]
            if not files:
                raise FileNotFoundError(f"no images below {p}")
            root = p.resolve().name or "images"
            out += [(f, Path(root) / f.relative_to(p).with_suffix("")) for f in files]
        elif p.is_file():
            out.append((p, Path(p.stem)))
        else:
            raise FileNotFoundError(f"no such image or folder: {p}")
    stems = [str(s) for _, s in out]
    dup = next((s for s in stems if stems.count(s) > 1), None)
    if dup is not None:
        raise FileNotFoundError(f"two inputs would both be written as {dup}.png; rename one")
    return out


def run(args: argparse.Namespace) -> int:
    if not Path(args.model).exists():
        raise FileNotFoundError(f"--model: no such run folder or config: {args.model}")
    items = _collect(args.inputs)
    import numpy as np
    import torch

    import taming
    from taming.images import load, make_grid, save
    from taming.metrics.image import psnr_per_image
    from taming.metrics.reconstruction import encode_decode, first_stage

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    model = first_stage(
        taming.load(
            args.model, unsafe=args.unsafe, device=device, dtype=args.dtype, compile=args.compile
        )
    )
    ch_mult = (getattr(model, "ddconfig", None) or {}).get("ch_mult", [1])
    f = 2 ** (len(ch_mult) - 1)
    outdir = Path(args.outdir)
    records, pairs = [], []
    for src, stem in items:
        x = load(src, size=args.size, multiple_of=f).to(device)  # (1, 3, H, W) in [-1, 1]
        xrec, codes = encode_decode(model, x)
        base = outdir / stem
        rec_path = save(xrec[0], base.with_name(base.name + ".png"))
        pair = torch.cat((x, xrec)).cpu()  # (2, 3, H, W)
        pair_path = base.with_name(base.name + "_pair.png")
        make_grid(pair, nrow=2).save(pair_path)
        codes_path = base.with_name(base.name + "_codes.npy")
        np.save(codes_path, codes[0].cpu().numpy().astype(np.int64))
        pairs.append(pair)
        records.append(
            {
                "input": str(src),
                "reconstruction": str(rec_path),
                "pair": str(pair_path),
                "codes": str(codes_path),
                "size": list(x.shape[-2:]),
                "latent_grid": list(codes.shape[-2:]),
                "psnr": float(psnr_per_image(xrec, x)[0]),
            }
        )
        print(f"{src} -> {rec_path} (PSNR {records[-1]['psnr']:.2f} dB)")
    if len({tuple(p.shape) for p in pairs}) == 1:
        make_grid(torch.cat(pairs[:32]), nrow=min(8, 2 * len(pairs))).save(outdir / "grid.png")
    summary = {
        "images": len(records),
        "outdir": str(outdir),
        "psnr": sum(r["psnr"] for r in records) / len(records),
        "files": records,
    }
    (outdir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    if args.json:
        print(json.dumps(summary))
    return 0
