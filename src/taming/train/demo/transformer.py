"""The demo's second stage: a small GPT over the demo VQGAN's codes (Esser et al. 2021, §3.2).

`transformer_stage` encodes random training crops once with the trained tokenizer, trains an
unconditional GPT (SOS prefix, minGPT AdamW, `taming.schedules` warmup + cosine) on the code
sequences, saves it as a `Net2NetTransformer` run folder (`taming.load` and `taming sample -r`
read it) and writes samples, completions and a 2x-wide sliding-window sample.
"""

from __future__ import annotations

import json
import logging
import random
import shutil
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from taming.schedules import LambdaWarmUpCosineScheduler
from taming.train.demo.context import DemoContext, StageResult
from taming.train.demo.crops import photo_crops

logger = logging.getLogger(__name__)

__all__ = ["DEMO_GPT", "demo_transformer_config", "train_code_gpt", "transformer_stage"]

DEMO_GPT = {"n_layer": 3, "n_head": 4, "n_embd": 96}  # best loss per CPU-minute of those tried


def demo_transformer_config(vqgan_dir: Path, size: int) -> dict[str, Any]:
    """`Net2NetTransformer` config of the demo: unconditional, over the demo VQGAN's codes."""
    from taming.loading import find_run_files

    configs, ckpt = find_run_files(vqgan_dir)
    first = OmegaConf.to_container(OmegaConf.load(configs[-1]).model, resolve=True)
    first.pop("base_learning_rate", None)
    first["params"].pop("lossconfig", None)
    first["params"]["lossconfig"] = {"target": "taming.losses.dummy.DummyLoss"}
    first["params"]["ckpt_path"] = str(Path(ckpt).resolve()) if ckpt else None
    f = 2 ** (len(first["params"]["ddconfig"]["ch_mult"]) - 1)
    n_embed = int(first["params"]["n_embed"])
    return {
        "model": {
            "base_learning_rate": 1.0e-3 / 16,
            "target": "taming.cond.net2net.Net2NetTransformer",
            "params": {
                "cond_stage_config": "__is_unconditional__",
                "first_stage_key": "image",
                "transformer_config": {
                    "target": "taming.transformer.gpt.GPT",
                    "params": {
                        "vocab_size": n_embed,
                        "block_size": (size // f) ** 2,  # SOS + h*w - 1 inputs
                        **DEMO_GPT,
                    },
                },
                "first_stage_config": first,
            },
        }
    }


@torch.no_grad()
def _encode_crops(
    model: Any, split: str, size: int, n: int, batch: int = 64
) -> tuple[torch.Tensor, torch.Tensor]:
    """`(images (n, 3, S, S), codes (n, h*w))` of `n` SkimagePhotos crops of a split."""
    images = photo_crops(split, size, n)
    codes = [model.encode_to_z(images[i : i + batch])[1] for i in range(0, n, batch)]  # (B, h*w)
    return images, torch.cat(codes)


@torch.no_grad()
def _code_loss(gpt: Any, codes: torch.Tensor, sos: int, batch: int = 64) -> float:
    """Mean cross-entropy (nats per token) of code sequences after an SOS token."""
    was_training = gpt.training
    gpt.eval()
    total, count = 0.0, 0
    for start in range(0, codes.shape[0], batch):
        z = codes[start : start + batch]
        x = torch.cat((torch.full_like(z[:, :1], sos), z[:, :-1]), dim=1)
        logits, _ = gpt(x)
        total += float(
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), z.reshape(-1), reduction="sum")
        )
        count += z.numel()
    gpt.train(was_training)
    return total / count


def train_code_gpt(
    gpt: Any,
    codes: torch.Tensor,
    steps: int,
    *,
    sos: int = 0,
    batch_size: int = 16,
    lr: float = 1.0e-3,
    warmup: int | None = None,
    max_seconds: float | None = None,
    seed: int = 0,
    progress: bool = False,
) -> int:
    """Train `gpt` on code sequences `(N, L)` after an SOS token; returns the steps done.

    The `Net2NetTransformer` objective with precomputed codes: `gpt([sos, z_0..z_{L-2}])`
    predicts `z_0..z_{L-1}`. minGPT AdamW groups; the learning-rate multiplier is
    `taming.schedules.LambdaWarmUpCosineScheduler` (linear warmup over 10% of the steps, at
    most 40, then a cosine to 10%), evaluated at step + 1.
    """
    from tqdm import tqdm

    from taming.train.net2net_module import transformer_param_groups

    groups = transformer_param_groups(gpt, weight_decay=0.01)
    for g in groups:
        del g["names"]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    if warmup is None:
        warmup = max(1, min(40, steps // 10))
    schedule = LambdaWarmUpCosineScheduler(
        warm_up_steps=warmup,
        lr_min=0.1,
        lr_max=1.0,
        lr_start=0.0,
        max_decay_steps=max(steps, warmup + 1),
    )
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    gpt.train()
    done = 0
    for step in tqdm(range(steps), desc="transformer", disable=not progress):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            logger.warning("transformer: time limit reached after %d of %d steps", step, steps)
            break
        scale = schedule(step + 1)
        for group in opt.param_groups:
            group["lr"] = lr * scale
        z = codes[torch.randint(codes.shape[0], (batch_size,), generator=g)]
        x = torch.cat((torch.full_like(z[:, :1], sos), z[:, :-1]), dim=1)
        logits, _ = gpt(x)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), z.reshape(-1))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        done += 1
    gpt.eval()
    return done


def transformer_stage(ctx: DemoContext) -> StageResult:
    """Train the demo transformer on the demo VQGAN's codes (see the module docstring)."""
    from taming.cond.net2net import Net2NetTransformer
    from taming.config import instantiate_from_config
    from taming.images import make_grid
    from taming.pipeline import complete_image, sample_images

    if "vqgan" not in ctx.results:
        raise RuntimeError("the transformer stage needs the vqgan stage's results")
    vq_dir = ctx.results["vqgan"].out
    out = ctx.out
    run = out / "transformer"
    shutil.rmtree(run, ignore_errors=True)
    t0 = time.perf_counter()
    torch.manual_seed(ctx.seed)
    random.seed(ctx.seed)
    config = demo_transformer_config(vq_dir, ctx.size)
    model: Net2NetTransformer = instantiate_from_config(config["model"], where="model")
    model.eval()
    steps = ctx.transformer_step_count()
    batch_size = 16
    n_train = int(min(2000, max(64, steps * batch_size // 2)))
    _, train_codes = _encode_crops(model, "train", ctx.size, n_train)
    val_images, val_codes = _encode_crops(model, "validation", ctx.size, 64)
    gpt, sos = model.transformer, int(model.sos_token)
    probe = train_codes[: min(256, n_train)]
    before = (_code_loss(gpt, probe, sos), _code_loss(gpt, val_codes, sos))
    encode_seconds = time.perf_counter() - t0
    t1 = time.perf_counter()
    max_seconds = 60.0 * ctx.transformer_max_minutes if ctx.transformer_max_minutes else None
    done = train_code_gpt(
        gpt,
        train_codes,
        steps,
        sos=sos,
        batch_size=batch_size,
        max_seconds=max_seconds,
        seed=ctx.seed,
        progress=ctx.progress,
    )
    train_seconds = time.perf_counter() - t1
    after = (_code_loss(gpt, probe, sos), _code_loss(gpt, val_codes, sos))

    # the run folder: `taming.load(run)` / `taming sample -r run`
    (run / "configs").mkdir(parents=True, exist_ok=True)
    (run / "checkpoints").mkdir(exist_ok=True)
    stamp = datetime.now().strftime("%Y-%m-%dT%H-%M-%S")
    (run / "configs" / f"{stamp}-project.yaml").write_text(
        OmegaConf.to_yaml(OmegaConf.create(config))
    )
    state = {"state_dict": model.state_dict(), "global_step": done, "taming": {"step_count": done}}
    torch.save(state, run / "checkpoints" / "last.ckpt")

    # samples, completions, a wide sliding-window sample
    t2 = time.perf_counter()
    gen = torch.Generator().manual_seed(ctx.seed)
    top_k = 100
    samples = sample_images(model, 16, top_k=top_k, generator=gen, batch_size=16)
    make_grid(samples, nrow=4).save(out / "samples.png")
    rows = []
    for i in range(8):
        x = val_images[i : i + 1]
        done_i, _, known = complete_image(model, x, 2, keep_top=0.5, top_k=top_k, generator=gen)
        kept = x * F.interpolate(known.float()[None, None], size=x.shape[-2:], mode="nearest")
        rows += [x, kept, done_i]
    make_grid(torch.cat(rows), nrow=4).save(out / "completion.png")
    wide = sample_images(model, 4, size=(ctx.size, 2 * ctx.size), top_k=top_k, generator=gen)
    make_grid(wide, nrow=1).save(out / "sliding_wide.png")
    sample_seconds = time.perf_counter() - t2

    metrics = {
        "loss_before": round(before[0], 4),
        "loss_after": round(after[0], 4),
        "val_loss_before": round(before[1], 4),
        "val_loss_after": round(after[1], 4),
        "steps": done,
        "batch_size": batch_size,
        "train_crops": n_train,
        "params": sum(p.numel() for p in gpt.parameters()),
        "encode_seconds": round(encode_seconds, 1),
        "train_seconds": round(train_seconds, 1),
        "sample_seconds": round(sample_seconds, 1),
        "seconds": round(time.perf_counter() - t0, 1),
    }
    metrics_path = out / "metrics.json"
    all_metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {}
    all_metrics["transformer"] = metrics
    metrics_path.write_text(json.dumps(all_metrics, indent=2) + "\n")
    files = {
        "samples": out / "samples.png",
        "completion": out / "completion.png",
        "sliding window (2x wide)": out / "sliding_wide.png",
        "metrics": metrics_path,
        "transformer run": run,
    }
    return StageResult("transformer", run, files, metrics)
