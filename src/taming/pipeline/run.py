"""`run_sampling(SampleOptions(...))`: what `taming sample` runs.

Loads the model (`taming.loading.load_sampling_model`), says what the request costs (tokens,
decode memory, an estimate of the time from a few timed steps) and refuses what is past the
limits, then draws the samples asked for, one mode per function: plain (unconditional, per
class, or after a condition file), completion of an image (resized and center-cropped to the
training size, or `--size`), rejection sampling, and conditions from the run's dataset
(`from_data`). It writes PNGs, a grid per folder and a `summary.json` of every setting into a
fresh folder (`taming.pipeline.options`); a token-level progress bar has the total and ETA.
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from taming.autoencoder.inference import prepare_first_stage
from taming.images import make_grid, save_images, to_pil
from taming.loading import load_sampling_model
from taming.pipeline.completion import complete_image, known_mask
from taming.pipeline.conditions import Plan, encode_condition, generator_for, plan_grid
from taming.pipeline.cost import check_cost, estimate_seconds
from taming.pipeline.errors import SampleError
from taming.pipeline.files import load_condition, load_image_tensor, load_mask
from taming.pipeline.options import (
    SampleOptions,
    SampleResult,
    check_options,
    fresh_folder,
    parse_classes,
    settings_name,
)
from taming.pipeline.output import condition_image, masked, reconstruct
from taming.pipeline.rejection import load_scorer, rejection_sample
from taming.pipeline.sample import iter_samples

logger = logging.getLogger(__name__)

__all__ = ["class_seed", "run_sampling"]


def class_seed(seed: int, key: int | None) -> int:
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


class _Run:
    """One `taming sample` run: the model, its settings and where they are written."""

    def __init__(self, opts: SampleOptions) -> None:
        self.t0 = time.perf_counter()
        self.opts = opts
        self.config, self.size = check_options(opts)
        self.requested_size = self.size  # names the folder; `size` follows the inputs
        self.device = _resolve_device(opts.device)
        self.scorer = load_scorer(opts.rejection) if opts.rejection else None
        self.model, self.step, self.run_dir = load_sampling_model(
            opts.resume,
            opts.ckpt,
            base=opts.base,
            overrides=opts.overrides,
            unsafe=opts.unsafe,
            device=self.device,
        )
        if opts.decode_weights is not None:  # timed at the rows each decode step will carry
            rows = min(opts.batch_size, opts.num_samples or opts.batch_size)
            rows *= 2 if opts.cfg_scale != 1.0 else 1
            self.model.transformer.to_low_precision(opts.decode_weights, rows=rows)
        if opts.compile:
            try:
                self.model.transformer.compile_decode()
            except RuntimeError as e:  # no C++ compiler for inductor
                raise SampleError(str(e)) from e
        prepare_first_stage(self.model, opts.first_stage_dtype, opts.compile)
        self.f = self.model.first_stage_factor
        if opts.cfg_scale != 1.0 and self.model.condition_kind == "none":
            raise SampleError("--cfg-scale needs a conditional model; this one is unconditional")
        n_classes = self.model.n_classes
        if opts.classes is not None and n_classes is None:
            raise SampleError("--classes: the model is not class-conditional")
        if n_classes is not None and opts.condition is not None:
            raise SampleError("the model is class-conditional: give --classes, not --condition")
        self.classes = parse_classes(opts.classes, n_classes) if n_classes is not None else None

    def generator(self, key: str | None) -> torch.Generator:
        """The generator of one class's (or the only) draws."""
        return generator_for(
            self.device, class_seed(self.opts.seed, None if key is None else int(key))
        )

    def folder(self, sub: str | None) -> Path:
        base = Path(self.opts.outdir) if self.opts.outdir else (self.run_dir or Path("."))
        folder = base / "samples" / settings_name(self.opts, self.requested_size) / str(self.step)
        return fresh_folder(folder / sub if sub else folder, self.opts.overwrite)

    def summary(self, n: int, plan: Plan, tokens: int, gib: float) -> dict[str, Any]:
        o = self.opts
        return {
            "resume": str(o.resume),
            "ckpt": o.ckpt,
            "global_step": self.step,
            "num_samples": n,
            "batch_size": o.batch_size,
            "top_k": o.top_k,
            "top_p": o.top_p,
            "temperature": o.temperature,
            "cfg_scale": o.cfg_scale,
            "use_cache": o.use_cache,
            "decode_weights": self.model.transformer.decode_weight_format or "fp32",  # used
            "decode_weights_requested": o.decode_weights or "fp32",  # the speed probe may differ
            "compile": o.compile,
            "first_stage_dtype": o.first_stage_dtype or "fp32",
            "seed": o.seed,
            "classes": self.classes,
            "condition": o.condition,
            "complete": o.complete,
            "keep_top": o.keep_top,
            "mask": o.mask,
            "from_data": o.from_data,
            "size": [plan.grid[0] * self.f, plan.grid[1] * self.f],
            "latent_grid": list(plan.grid),
            "window": list(plan.window),
            "sliding_window": plan.sliding,
            "factor": self.f,
            "tokens_per_image": tokens,
            "decode_gib_per_batch": round(gib, 3),
            "device": str(self.device),
            "overrides": list(o.overrides),
        }

    def announce(self, plan: Plan, n_images: int, steps: int, n_ctx: int) -> tqdm:
        """Check the cost, say it, and return the token-level progress bar."""
        batch = min(self.opts.batch_size, n_images)
        tokens, gib = check_cost(
            self.model, plan, batch, self.opts.max_tokens, self.opts.max_decode_gib
        )
        n_batches = math.ceil(n_images / batch)
        seconds = estimate_seconds(self.model, plan, batch, steps * n_batches, n_ctx, self.config)
        H, W = plan.grid[0] * self.f, plan.grid[1] * self.f
        logger.info(
            "%d image(s) of %dx%d px: %d tokens each (%s), %d to draw per image; "
            "about %.0f s (from timed steps), decoding needs about %.2f GiB per batch",
            n_images,
            H,
            W,
            tokens,
            "sliding window" if plan.sliding else "one window",
            steps,
            seconds,
            gib,
        )
        self.cost = (tokens, gib)
        return tqdm(
            total=n_images * steps,
            desc="sampling",
            unit="tok",
            disable=not self.opts.progress,
        )

    def done(self, result: SampleResult, summary: dict[str, Any]) -> SampleResult:
        summary["seconds"] = round(time.perf_counter() - self.t0, 2)
        summary["images"] = len([p for p in result.files if p.parent.name != "inputs"])
        (result.folder / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
        result.summary = summary
        return result


def _bar_callback(bar: tqdm):
    return lambda step, probs: bar.update(probs.shape[0])


def _conds(run: _Run, model: Any) -> tuple[list[tuple[str | None, Any]], Any]:
    """`(folder key, condition)` pairs of a plain or completion run, and a condition image."""
    opts = run.opts
    if run.classes is not None:
        return [(str(k), k) for k in run.classes], None
    if opts.condition is not None:
        cond = load_condition(model, opts.condition, run.size)
        if run.size is None and cond.ndim == 4:
            run.size = tuple(cond.shape[-2:])
        return [(None, cond)], condition_image(model, cond)
    if model.condition_kind != "none" and not model.makes_own_condition:
        raise SampleError(
            f"the model is conditioned on '{model.cond_stage_key}': give --condition FILE "
            "(or --from-data SPLIT)"
        )
    return [(None, None)], None


def plan_of(run: _Run, cond: Any, n: int) -> tuple[Plan, int]:
    """The plan of a request and its context length (prefix + condition window)."""
    c = encode_condition(run.model, cond, n, run.size, None)
    plan = plan_grid(run.model, c, run.size, None)
    n_ctx = (c.prefix.shape[1] if c.prefix is not None else 0) + (
        plan.window[0] * plan.window[1] if c.grid is not None else 0
    )
    return plan, n_ctx


def _write_grid(run: _Run, result: SampleResult, out: Path, shown: torch.Tensor) -> None:
    if run.opts.grid:
        path = out / "grid.png"
        make_grid(shown[: run.opts.grid_max]).save(path)
        result.grids.append(path)


def _sample_plain(run: _Run) -> SampleResult:
    opts, model = run.opts, run.model
    conds, cond_vis = _conds(run, model)
    n = opts.num_samples or (4 if opts.condition else 50)
    sub = f"cond_{Path(opts.condition).stem}" if opts.condition else None
    plan, n_ctx = plan_of(run, conds[0][1], n)
    total = n if run.scorer is None else math.ceil(n / opts.acceptance - 1e-9)
    steps = plan.grid[0] * plan.grid[1]
    bar = run.announce(plan, total * len(conds), steps, n_ctx)
    result = SampleResult(run.folder(sub))
    summary = run.summary(n, plan, *run.cost)
    if cond_vis is not None:
        path = result.folder / "condition.png"
        to_pil(cond_vis[0]).save(path)
        result.files.append(path)
    per_class: dict[str, Any] = {}
    with bar:
        for key, cond in conds:
            out = result.folder / key if key is not None else result.folder
            gen = generator_for(
                run.device, class_seed(opts.seed, None if key is None else int(key))
            )
            kw = dict(size=run.size, generator=gen, batch_size=opts.batch_size)
            if run.scorer is not None:
                images, _, scores, info = rejection_sample(
                    model, n, run.scorer, opts.acceptance, cond, run.config,
                    callback=_bar_callback(bar), **kw,
                )  # fmt: skip
                result.files += save_images(images, out)
                info["scores"] = [round(float(s), 6) for s in scores]
                per_class[key or "all"] = info
                logger.info(
                    "%s: kept %d of %d candidates (acceptance rate %.3f); mean score %.4g -> %.4g",
                    f"class {key}" if key is not None else "samples",
                    info["kept"], info["candidates"], info["acceptance_rate"],
                    info["score_mean_all"], info["score_mean_kept"],
                )  # fmt: skip
                shown = images
            else:
                shown_list, count = [], 0
                for x, _ in iter_samples(
                    model, n, cond, run.config, callback=_bar_callback(bar), **kw
                ):
                    result.files += save_images(x, out, start=count)
                    count += x.shape[0]
                    if sum(s.shape[0] for s in shown_list) < opts.grid_max:
                        shown_list.append(x)
                shown = torch.cat(shown_list)
            _write_grid(run, result, out, shown)
    if per_class:
        summary["rejection"] = {
            "scorer": opts.rejection,
            "acceptance": opts.acceptance,
            "per_class": per_class,
        }
    return run.done(result, summary)


def _complete(run: _Run) -> SampleResult:
    opts, model = run.opts, run.model
    conds, _ = _conds(run, model)
    size = run.size or tuple(s * run.f for s in model.training_window)
    image = load_image_tensor(opts.complete, run.f, size)  # resized + center crop
    logger.info("%s: resized and center-cropped to %dx%d px", opts.complete, size[1], size[0])
    mask = load_mask(opts.mask) if opts.mask else None
    n = opts.num_samples or 4
    run.size = size
    plan, n_ctx = plan_of(run, conds[0][1], n)
    known = known_mask(plan.grid, opts.keep_top, mask)
    steps = int((~known).sum())
    bar = run.announce(plan, n * len(conds), steps, n_ctx)
    result = SampleResult(run.folder(f"complete_{Path(opts.complete).stem}"))
    summary = run.summary(n, plan, *run.cost)
    rec = reconstruct(model, image)
    with bar:
        for key, cond in conds:
            out = result.folder / key if key is not None else result.folder
            gen = generator_for(
                run.device, class_seed(opts.seed, None if key is None else int(key))
            )
            images, tokens, known = complete_image(
                model, image, n, cond, run.config, keep_top=opts.keep_top, mask=mask,
                generator=gen, batch_size=opts.batch_size, callback=_bar_callback(bar),
            )  # fmt: skip
            result.files += save_images(images, out)
            torch.save({"tokens": tokens, "known": known}, out / "tokens.pt")
            shown = torch.cat((image.cpu(), rec, masked(rec, known, run.f), images))
            _write_grid(run, result, out, shown)
    return run.done(result, summary)


def run_sampling(opts: SampleOptions) -> SampleResult:
    """Run `taming sample`: load the model, sample as asked, write PNGs, grids and a summary."""
    run = _Run(opts)
    if opts.from_data is not None:
        from taming.pipeline.from_data import sample_from_data

        return sample_from_data(run)
    if opts.complete is not None:
        return _complete(run)
    return _sample_plain(run)
