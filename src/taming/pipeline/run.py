"""`run_sampling(SampleOptions(...))`: what `taming sample` runs.

Loads the model, draws the samples asked for (plain, per class, conditioned, completed, or
rejection-sampled), and writes them with the output layout of the original
`scripts/sample_fast.py`:
`<out>/samples/top_k_{k}_temp_{t:.2f}_top_p_{p}/{global_step}/[{class}/]{count:06}.png`,
plus `grid.png` and `summary.json`.
"""

from __future__ import annotations

import json
import logging
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from taming.images import make_grid, save_images, to_pil
from taming.loading import load_sampling_model
from taming.pipeline.completion import complete_image
from taming.pipeline.errors import SampleError
from taming.pipeline.files import load_condition, load_image_tensor, load_mask
from taming.pipeline.geometry import (
    _is_unconditional,
    _n_classes,
    _stage,
    first_stage_factor,
    latent_grid,
    training_window,
)
from taming.pipeline.output import _condition_image, _masked, _reconstruct
from taming.pipeline.rejection import load_scorer, rejection_sample
from taming.pipeline.sample import _generator, iter_samples

logger = logging.getLogger(__name__)


def parse_classes(spec: str | None, n_classes: int) -> list[int]:
    """`"imagenet"`/`"all"`/None -> all classes; `"0,3,7"` -> `[0, 3, 7]` (checked)."""
    if spec is None or spec.strip().lower() in ("imagenet", "all", ""):
        return list(range(n_classes))
    try:
        ids = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise SampleError(
            f"--classes: expected 'imagenet' or ids like 0,3,7, got '{spec}'"
        ) from None
    bad = [i for i in ids if not 0 <= i < n_classes]
    if bad:
        raise SampleError(f"--classes: class id {bad[0]} is out of range [0, {n_classes})")
    if not ids:
        raise SampleError("--classes: no class ids given")
    return ids


def parse_size(spec: str | None) -> tuple[int, int] | None:
    """`"256"` -> (256, 256); `"512,1024"` (H,W) -> (512, 1024)."""
    if spec is None:
        return None
    try:
        parts = [int(s) for s in spec.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'")
    return parts[0], parts[1]


@dataclass
class SampleOptions:
    """Options of `taming sample` (see `taming.commands.sample`)."""

    resume: str
    ckpt: str | None = None
    outdir: str | None = None
    base: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    num_samples: int | None = None
    batch_size: int = 25
    top_k: int = 250
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    classes: str | None = None
    cfg_scale: float = 1.0
    condition: str | None = None
    size: str | None = None
    complete: str | None = None
    keep_top: float | None = None
    mask: str | None = None
    rejection: str | None = None
    acceptance: float = 0.1
    grid: bool = True
    grid_max: int = 64
    unsafe: bool = False
    device: str | None = None
    use_cache: bool = True
    decode_weights: str | None = None  # "bf16"/"fp16": low-precision decode weights (opt-in)
    progress: bool = True


@dataclass
class SampleResult:
    """Where `run_sampling` wrote what."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _class_seed(seed: int, key: int | None) -> int:
    """Seed of one class's draws (the same whichever other classes are sampled)."""
    if key is None:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(key) + 1]).generate_state(1)[0])


def _resolve_device(name: str | None) -> torch.device:
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SampleError("--device cuda: no CUDA device available")
    return device


def _fmt(x: float) -> str:
    return f"{x:g}"


def run_sampling(opts: SampleOptions) -> SampleResult:
    """Run `taming sample`: load the model, sample as asked, write PNGs, grids and a summary."""
    t0 = time.perf_counter()
    device = _resolve_device(opts.device)
    if opts.temperature <= 0:
        raise SampleError(f"--temperature must be > 0, got {opts.temperature}")
    if not 0.0 < opts.top_p <= 1.0:
        raise SampleError(f"--top_p must be in (0, 1], got {opts.top_p}")
    if opts.top_k < 0:
        raise SampleError(f"--top_k must be >= 0 (0: off), got {opts.top_k}")
    if opts.mask is not None and opts.complete is None:
        raise SampleError("--mask needs --complete IMAGE")
    if opts.keep_top is not None and opts.complete is None:
        raise SampleError("--keep-top needs --complete IMAGE")
    if opts.mask is not None and opts.keep_top is not None:
        raise SampleError("give either --keep-top or --mask, not both")
    if opts.rejection is not None and opts.complete is not None:
        raise SampleError("--rejection samples from scratch; it cannot be combined with --complete")
    if opts.decode_weights is not None and not opts.use_cache:
        raise SampleError("--decode-weights applies to cached sampling; drop --no-cache")
    size = parse_size(opts.size)
    for path, flag in (
        (opts.condition, "--condition"),
        (opts.complete, "--complete"),
        (opts.mask, "--mask"),
    ):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag}: file not found: {path}")
    scorer = load_scorer(opts.rejection) if opts.rejection else None

    model, step, run_dir = load_sampling_model(
        opts.resume,
        opts.ckpt,
        base=opts.base,
        overrides=opts.overrides,
        unsafe=opts.unsafe,
        device=device,
    )
    if opts.decode_weights is not None:
        model.transformer.to_low_precision(opts.decode_weights)
    f = first_stage_factor(model)
    if size is not None:
        latent_grid(model, size)

    # the conditions: (folder name, cond) pairs
    n_classes = _n_classes(model)
    if opts.classes is not None and n_classes is None:
        raise SampleError("--classes: the model is not class-conditional")
    conds: list[tuple[str | None, Any]]
    cond_vis = None
    if n_classes is not None:
        if opts.condition is not None:
            raise SampleError("the model is class-conditional: give --classes, not --condition")
        conds = [(str(k), k) for k in parse_classes(opts.classes, n_classes)]
    elif opts.condition is not None:
        cond = load_condition(model, opts.condition, size)
        conds = [(None, cond)]
        cond_vis = _condition_image(model, cond)
        if size is None and cond.ndim == 4:
            size = tuple(cond.shape[-2:])
    else:
        from taming.cond.stages import CoordStage

        coords = isinstance(_stage(model), CoordStage)  # the coordinate map is made here
        if not (_is_unconditional(model) or coords):
            raise SampleError(
                f"the model is conditioned on '{model.cond_stage_key}': give --condition FILE"
            )
        conds = [(None, None)]
    if opts.cfg_scale != 1.0 and _is_unconditional(model):
        raise SampleError("--cfg-scale needs a conditional model; this one is unconditional")

    name = f"top_k_{opts.top_k}_temp_{opts.temperature:.2f}_top_p_{opts.top_p}"
    if opts.cfg_scale != 1.0:
        name += f"_cfg_{_fmt(opts.cfg_scale)}"
    if scorer is not None:
        name += f"_rejection_{_fmt(opts.acceptance)}"
    if opts.decode_weights is not None:
        name += f"_{opts.decode_weights}"
    base_dir = Path(opts.outdir) if opts.outdir else (run_dir or Path("."))
    folder = base_dir / "samples" / name / str(step)
    if opts.complete is not None:
        folder = folder / f"complete_{Path(opts.complete).stem}"
    elif opts.condition is not None:
        folder = folder / f"cond_{Path(opts.condition).stem}"
    folder.mkdir(parents=True, exist_ok=True)

    n = opts.num_samples
    if n is None:
        n = 4 if (opts.complete or opts.condition) else 50
    if n < 1:
        raise SampleError(f"-n/--num_samples must be >= 1, got {n}")
    common = {
        "top_k": opts.top_k or None,
        "top_p": opts.top_p,
        "temperature": opts.temperature,
        "cfg_scale": opts.cfg_scale,
        "use_cache": opts.use_cache,
    }
    result = SampleResult(folder)
    summary: dict[str, Any] = {
        "resume": str(opts.resume),
        "global_step": step,
        "num_samples": n,
        "batch_size": opts.batch_size,
        "top_k": opts.top_k,
        "top_p": opts.top_p,
        "temperature": opts.temperature,
        "cfg_scale": opts.cfg_scale,
        "decode_weights": opts.decode_weights or "fp32",
        "seed": opts.seed,
        "device": str(device),
        "factor": f,
        "window": list(training_window(model)),
    }
    if cond_vis is not None:
        cond_path = folder / "condition.png"
        to_pil(cond_vis[0]).save(cond_path)
        result.files.append(cond_path)

    image = None
    if opts.complete is not None:
        image = load_image_tensor(opts.complete, f, size)
        mask = load_mask(opts.mask) if opts.mask else None
        summary.update(complete=str(opts.complete), keep_top=opts.keep_top, mask=opts.mask)

    total = n * len(conds) if scorer is None else math.ceil(n / opts.acceptance - 1e-9) * len(conds)
    bar = tqdm(total=total, desc="sampling", unit="img", disable=not opts.progress)
    per_class: dict[str, Any] = {}
    with bar:
        for key, cond in conds:
            out = folder / key if key is not None else folder
            gen = _generator(device, _class_seed(opts.seed, None if key is None else int(key)))
            if image is not None:
                images, tokens, known = complete_image(
                    model,
                    image,
                    n,
                    cond,
                    keep_top=opts.keep_top,
                    mask=mask,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                )
                bar.update(n)
                paths = save_images(images, out)
                rec = _reconstruct(model, image)
                shown = torch.cat((image.cpu(), rec, _masked(rec, known, f), images))
                torch.save({"tokens": tokens, "known": known}, out / "tokens.pt")
            elif scorer is not None:
                images, tokens, scores, info = rejection_sample(
                    model,
                    n,
                    scorer,
                    opts.acceptance,
                    cond,
                    size=size,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                )
                bar.update(info["candidates"])
                paths = save_images(images, out)
                info["scores"] = [round(float(s), 6) for s in scores]
                per_class[key or "all"] = info
                logger.info(
                    "%s: kept %d of %d candidates (acceptance rate %.3f); mean score %.4g -> %.4g",
                    f"class {key}" if key is not None else "samples",
                    info["kept"],
                    info["candidates"],
                    info["acceptance_rate"],
                    info["score_mean_all"],
                    info["score_mean_kept"],
                )
                shown = images
            else:
                paths, shown_list, count = [], [], 0
                for x, _ in iter_samples(
                    model,
                    n,
                    cond,
                    size=size,
                    generator=gen,
                    batch_size=opts.batch_size,
                    **common,
                ):
                    paths += save_images(x, out, start=count)
                    count += x.shape[0]
                    if sum(s.shape[0] for s in shown_list) < opts.grid_max:
                        shown_list.append(x)
                    bar.update(x.shape[0])
                shown = torch.cat(shown_list)
            result.files += paths
            if opts.grid:
                grid_path = out / "grid.png"
                make_grid(shown[: opts.grid_max]).save(grid_path)
                result.grids.append(grid_path)
    if per_class:
        summary["rejection"] = {
            "scorer": opts.rejection,
            "acceptance": opts.acceptance,
            "per_class": per_class,
        }
    summary["seconds"] = round(time.perf_counter() - t0, 2)
    summary["images"] = len([p for p in result.files if p.name != "condition.png"])
    (folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    result.summary = summary
    return result
