"""How well a first stage (VQGAN tokenizer) reconstructs a set of images.

"Taming Transformers" (Esser et al., CVPR 2021) compares tokenizers by reconstruction FID;
this module measures, over a whole folder or dataset:

- rFID: FID between the inputs and their reconstructions, both as uint8 images (what PNGs of
  them hold), with the FID Inception of `taming.metrics.extractor` (when its weights exist);
- PSNR and SSIM (`taming.metrics.image`, per image on [0, 1], averaged), LPIPS (VGG,
  `taming.losses.lpips`, when its weights exist), all on the clamped float reconstruction;
- codebook health over the whole set (`taming.metrics.codebook`): usage, perplexity, dead
  codes, and the bits an image costs: `bits_per_image = tokens * log2(n_codes)` (fixed-length
  codes) and `entropy_bits_per_image = tokens * log2(perplexity)` (an ideal entropy coder on
  the set's code frequencies);
- the `worst` reconstructions by PSNR, for a grid (inputs and reconstructions side by side).

    result = evaluate_reconstruction(taming.load(run), "val_images/", size=256)
    write_reconstruction_report(result, "eval/")   # report.json, report.md, worst.png
"""

from __future__ import annotations

import heapq
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from taming.metrics.codebook import CodebookCounter, codebook_stats, dead_codes
from taming.metrics.fid import frechet_distance, frechet_distance_features, statistics
from taming.metrics.image import psnr_per_image, ssim_per_image
from taming.metrics.sources import load_dataset, to_uint8

logger = logging.getLogger(__name__)

__all__ = [
    "ReconstructionResult",
    "encode_decode",
    "evaluate_reconstruction",
    "first_stage",
    "reconstruction_dataset",
    "report_markdown",
    "write_reconstruction_report",
]


def first_stage(model: Any) -> Any:
    """The first stage of a model (a transformer's `first_stage_model`, else the model)."""
    return getattr(model, "first_stage_model", model)


@torch.no_grad()
def encode_decode(model: Any, x: Tensor) -> tuple[Tensor, Tensor]:
    """`(reconstruction (B, C, H, W) clamped to [-1, 1], codes (B, h, w))` of a batch."""
    quant, _, info = model.encode(x)
    b, _, h, w = quant.shape
    codes = info.indices.reshape(b, h, w)  # flat or (B, h, w), whichever the quantizer gives
    return model.decode(quant).clamp(-1, 1), codes


def n_codes(model: Any) -> int:
    """Size of the code vocabulary (`re_embed` of a remapped quantizer, else `n_embed`)."""
    return int(getattr(model.quantize, "re_embed", None) or model.n_embed)


def _model_size(model: Any) -> int | None:
    res = (getattr(model, "ddconfig", None) or {}).get("resolution")
    return int(res) if res else None


def reconstruction_dataset(data: str | os.PathLike, size: int | None) -> Any:
    """A dataset of `{"image": (H, W, 3) in [-1, 1], "file_path_"}`: a folder (all images
    below it, resized and center-cropped to `size`) or a dataset config (see
    `taming.metrics.sources.load_dataset`; `size` overrides its `params.size`)."""
    from taming.data.folder import ImageFolderDataset

    p = Path(data)
    if p.is_dir():
        return ImageFolderDataset(str(p), size=size or 256)
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        return load_dataset(p, size=size)[0]
    if not p.exists():
        raise FileNotFoundError(f"--data: no such folder or config: {p}")
    return ImageFolderDataset(str(p), size=size or 256)  # an image list file


@dataclass
class ReconstructionResult:
    """Metrics (`report`) and the worst reconstructions (`worst`: (psnr, name, x, xrec))."""

    report: dict[str, Any]
    worst: list[tuple[float, str, Tensor, Tensor]] = field(default_factory=list)
    per_image: list[dict[str, Any]] = field(default_factory=list)


def evaluate_reconstruction(
    model: Any,
    data: str | os.PathLike | Any,
    *,
    size: int | None = None,
    batch_size: int = 8,
    extractor: Any = None,
    lpips: torch.nn.Module | None = None,
    worst: int = 16,
    device: str | torch.device | None = None,
    progress: bool = True,
) -> ReconstructionResult:
    """Reconstruct every image of `data` and measure (see the module docstring).

    Args:
        model: a first stage (`VQModel`, `GumbelVQ`, `EMAVQ`) or a model with a
            `first_stage_model`.
        data: a folder, an image list, a dataset config, or a dataset of `{"image": ...}`.
        size: image side (default: the model's training resolution).
        batch_size: images per batch.
        extractor: an `InceptionExtractor` for rFID (None: no rFID).
        lpips: an `LPIPS` module (None: no LPIPS).
        worst: how many of the worst reconstructions (lowest PSNR) to keep.
        device: where to run (default: the model's device).
    """
    from torch.utils.data import DataLoader

    model = first_stage(model).eval()
    if device is not None:
        model.to(device)
    dev = next(model.parameters()).device
    size = size or _model_size(model)
    if isinstance(data, str | os.PathLike):
        dataset = reconstruction_dataset(data, size)
    else:
        dataset = data  # a dataset of {"image": ...}
    if len(dataset) == 0:
        raise ValueError(f"{data}: no images")
    if lpips is not None:
        lpips = lpips.to(dev).eval()
    counter = CodebookCounter(n_codes(model))
    psnrs, ssims, lpipss, names = [], [], [], []
    feats_in, feats_rec = [], []
    keep: list[tuple[float, int, str, Tensor, Tensor]] = []  # (-psnr, index, name, x, xrec)
    grid_hw = None
    t0 = time.perf_counter()
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=0)
    seen = 0
    with tqdm(total=len(dataset), desc="reconstructing", unit="img", disable=not progress) as bar:
        for batch in loader:
            x = model.get_input(batch).to(dev)  # (B, C, H, W) in [-1, 1]
            xrec, codes = encode_decode(model, x)
            grid_hw = tuple(codes.shape[1:])
            counter.update(codes)
            p = psnr_per_image(xrec, x).cpu()
            s = ssim_per_image(xrec, x).cpu()
            psnrs.append(p)
            ssims.append(s)
            if lpips is not None and x.shape[1] == 3:
                with torch.no_grad():
                    lpipss.append(lpips(xrec, x).flatten().double().cpu())
            if extractor is not None and x.shape[1] == 3:
                feats_in.append(extractor(to_uint8(x))[0].numpy())
                feats_rec.append(extractor(to_uint8(xrec))[0].numpy())
            paths = batch.get("file_path_") or [f"#{seen + i}" for i in range(x.shape[0])]
            for i in range(x.shape[0]):
                names.append(str(paths[i]))
                # min-heap on -psnr: its top is the best image kept, dropped first when full
                item = (-float(p[i]), seen + i, str(paths[i]), x[i].cpu(), xrec[i].cpu())
                if len(keep) < worst:
                    heapq.heappush(keep, item)
                elif worst > 0:
                    heapq.heappushpop(keep, item)
            seen += x.shape[0]
            bar.update(x.shape[0])
    worst_list = sorted(((-v, n, a, b) for v, _, n, a, b in keep), key=lambda t: t[0])
    psnr_all, ssim_all = torch.cat(psnrs), torch.cat(ssims)
    counts = counter.histogram()
    usage, perplexity = codebook_stats(counts)
    k = n_codes(model)
    tokens = int(grid_hw[0] * grid_hw[1])
    report: dict[str, Any] = {
        "model": type(model).__name__,
        "data": str(data) if isinstance(data, str | Path) else type(data).__name__,
        "images": len(names),
        "size": list(x.shape[-2:]),
        "tokens_per_image": tokens,
        "latent_grid": list(grid_hw),
        "n_codes": k,
        "psnr": float(psnr_all.mean()),
        "ssim": float(ssim_all.mean()),
        "codebook_usage": float(usage),
        "perplexity": float(perplexity),
        "dead_codes": dead_codes(counts),
        "bits_per_image": tokens * math.log2(k),
        "entropy_bits_per_image": tokens * math.log2(max(float(perplexity), 1.0)),
    }
    if lpipss:
        report["lpips"] = float(torch.cat(lpipss).mean())
    if feats_in:
        if len(names) < 2:
            logger.warning("rFID needs at least 2 images; skipped")
        else:
            f_rec, f_in = np.concatenate(feats_rec), np.concatenate(feats_in)
            if len(f_in) <= f_in.shape[1]:  # fewer images than dimensions: the exact SVD form
                report["rfid"] = frechet_distance_features(f_rec, f_in)
            else:
                report["rfid"] = frechet_distance(*statistics(f_rec), *statistics(f_in))
    report["seconds"] = time.perf_counter() - t0
    per_image = [
        {"file": n, "psnr": float(a), "ssim": float(b)}
        for n, a, b in zip(names, psnr_all.tolist(), ssim_all.tolist())
    ]
    return ReconstructionResult(report, worst_list, per_image)


_ROWS = (
    ("rfid", "rFID", "{:.3f}"),
    ("psnr", "PSNR (dB)", "{:.3f}"),
    ("ssim", "SSIM", "{:.4f}"),
    ("lpips", "LPIPS", "{:.4f}"),
    ("codebook_usage", "codebook usage", "{:.4f}"),
    ("perplexity", "perplexity", "{:.2f}"),
    ("dead_codes", "dead codes", "{}"),
    ("n_codes", "codebook size", "{}"),
    ("tokens_per_image", "tokens per image", "{}"),
    ("bits_per_image", "bits per image", "{:.0f}"),
    ("entropy_bits_per_image", "bits per image (entropy)", "{:.0f}"),
    ("images", "images", "{}"),
)


def report_markdown(report: dict[str, Any]) -> str:
    """The report as a two-column Markdown table."""
    lines = [
        f"Reconstruction of `{report.get('data')}` by {report.get('model')}"
        f" at {'x'.join(map(str, report.get('size', [])))}",
        "",
        "| metric | value |",
        "| --- | ---: |",
    ]
    for key, label, fmt in _ROWS:
        if key in report:
            lines.append(f"| {label} | {fmt.format(report[key])} |")
    return "\n".join(lines) + "\n"


def write_reconstruction_report(
    result: ReconstructionResult, outdir: str | os.PathLike, pairs_per_row: int = 4
) -> dict[str, Path]:
    """Write `report.json`, `report.md`, `per_image.json` and `worst.png` into `outdir`.

    `worst.png`: (input, reconstruction) pairs, worst PSNR first, `pairs_per_row` per row.
    """
    from taming.images import make_grid

    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    files = {"json": out / "report.json", "markdown": out / "report.md"}
    files["json"].write_text(json.dumps(result.report, indent=2) + "\n")
    files["markdown"].write_text(report_markdown(result.report))
    per_image = out / "per_image.json"
    per_image.write_text(json.dumps(result.per_image, indent=1) + "\n")
    files["per_image"] = per_image
    if result.worst:
        tiles = torch.stack([t for _, _, a, b in result.worst for t in (a, b)])
        if tiles.shape[1] in (1, 3):
            nrow = 2 * min(pairs_per_row, len(result.worst))
            files["worst"] = out / "worst.png"
            make_grid(tiles, nrow=nrow).save(files["worst"])
    return files
