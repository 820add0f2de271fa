"""`taming demo`: train a small VQGAN on the photos bundled with scikit-image, on a CPU.

Nothing is downloaded: `taming.data.demo.SkimagePhotos` serves random crops of the colour
photos that ship inside scikit-image (astronaut, chelsea, coffee, rocket, ...). The demo is a
list of stages, each a function `stage(ctx) -> StageResult`; they run in order and share a
`DemoContext` (output folder, seed, results of earlier stages). Today there is one stage:

`vqgan_stage` trains a small VQGAN (f4, 16x16 codes at 64 px, L1 reconstruction, PatchGAN
discriminator from 60% of the steps on; 1000 steps of 4 crops, about 5 minutes on 2 CPU
cores, stopped early after `max_minutes` of training if the machine is slower) with the
regular trainer (`taming.train.run.run_training`), then writes into the output folder:

- `inputs.png`, `reconstructions_step0.png` (untrained), `reconstructions.png` (trained):
  16 fixed validation crops;
- `metrics.json`: PSNR (dB) of those crops before and after training (`psnr_before`,
  `psnr_after`), codebook usage and perplexity on them, steps, seconds;
- `checkpoints/last.ckpt` and `configs/` (so `taming.load(out)` loads the model), `metrics.csv`.

`transformer_stage` (the second stage, Esser et al. §3.2) encodes random training crops
once with the trained tokenizer (`ctx.results["vqgan"].out`), trains a small unconditional
GPT (SOS prefix) on the code sequences (minGPT AdamW, warmup + cosine learning rate; about
2 minutes on 2 CPU cores, stopped after `transformer_max_minutes`), saves it as a
`Net2NetTransformer` run folder (`<out>/transformer`: `taming.load` and `taming sample -r`
read it) and writes, with `taming.pipeline`:

- `samples.png`: 16 unconditional samples;
- `completion.png`: 8 validation photos, each as original | top half kept | 2 completions;
- `sliding_wide.png`: samples twice as wide as the training crops (sliding window);
- `metrics.json` (`"transformer"` entry): cross-entropy of fixed training and validation
  codes before and after training (nats per token), steps, seconds.

Samples of a tiny model trained for two minutes on eight photos are rough: colours and
textures of the photos, little structure.
"""

from __future__ import annotations

import json
import logging
import math
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from omegaconf import OmegaConf

from taming.metrics.codebook import codebook_stats, histogram
from taming.metrics.image import psnr
from taming.train.callbacks import save_image_grid

logger = logging.getLogger(__name__)

__all__ = [
    "STAGES",
    "DemoContext",
    "StageResult",
    "demo_transformer_config",
    "demo_vqgan_config",
    "run_demo",
    "train_code_gpt",
    "transformer_stage",
    "vqgan_stage",
]


@dataclass
class StageResult:
    """Outputs of one demo stage: its folder, the files to show, and its metrics."""

    name: str
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoContext:
    """Settings shared by the stages, and the results of the stages run so far."""

    out: Path
    steps: int = 1000
    size: int = 64
    batch_size: int = 4
    seed: int = 23
    perceptual: bool = False
    max_minutes: float | None = 6.0
    progress: bool = True
    transformer_steps: int | None = None
    transformer_max_minutes: float | None = 2.2
    results: dict[str, StageResult] = field(default_factory=dict)

    def transformer_step_count(self) -> int:
        """Transformer steps: as set, else `DEMO_TRANSFORMER_STEPS` scaled like `steps`."""
        if self.transformer_steps is not None:
            return self.transformer_steps
        return max(2, round(DEMO_TRANSFORMER_STEPS * self.steps / 1000))


def demo_vqgan_config(
    steps: int = 1000,
    size: int = 64,
    batch_size: int = 4,
    perceptual: bool = False,
    max_minutes: float | None = None,
) -> dict[str, Any]:
    """The demo's training config (the same as `configs/vqgan/skimage_demo.yaml`).

    Chosen for quality per CPU-minute (measured on 2 cores): a narrow f4 autoencoder (ch 32,
    16x16 codes at 64 px, 256 codes), small batches with a high learning rate, the PatchGAN
    discriminator from 60% of the steps on.
    """
    config: dict[str, Any] = {
        "model": {
            "base_learning_rate": 2.5e-4,  # x batch 4 = 1e-3
            "target": "taming.autoencoder.vqmodel.VQModel",
            "params": {
                "embed_dim": 32,
                "n_embed": 256,
                "ddconfig": {
                    "double_z": False,
                    "z_channels": 32,
                    "resolution": size,
                    "in_channels": 3,
                    "out_ch": 3,
                    "ch": 32,
                    "ch_mult": [1, 2, 2],
                    "num_res_blocks": 1,
                    "attn_resolutions": [],
                    "dropout": 0.0,
                },
                "lossconfig": {
                    "target": "taming.losses.vqperceptual.VQLPIPSWithDiscriminator",
                    "params": {
                        "disc_start": max(1, int(0.6 * steps)),
                        "disc_weight": 0.5,
                        "disc_num_layers": 2,
                        "disc_ndf": 32,
                        "codebook_weight": 1.0,
                        "perceptual_weight": 1.0 if perceptual else 0.0,
                    },
                },
            },
        },
        "data": {
            "target": "taming.train.datamodule.DataModuleFromConfig",
            "params": {
                "batch_size": batch_size,
                "num_workers": 0,
                "train": {
                    "target": "taming.data.demo.SkimagePhotos",
                    # one epoch = the whole run: checkpoints only at the end
                    "params": {"size": size, "length": steps * batch_size, "split": "train"},
                },
            },
        },
        "lightning": {
            "trainer": {
                "max_steps": steps,
                "accelerator": "auto",
                "devices": 1,
                "num_sanity_val_steps": 0,
                "enable_model_summary": False,
                "log_every_n_steps": 10,
            },
            "modelcheckpoint": {"params": {"save_top_k": 0}},
            "callbacks": {
                "image_logger": {
                    "params": {
                        "batch_frequency": max(1, steps // 4),
                        "increase_log_steps": False,
                    }
                },
            },
        },
    }
    if max_minutes:
        config["lightning"]["trainer"]["max_time"] = {"minutes": float(max_minutes)}
    return config


class _ReconstructionProbe(pl.Callback):
    """Reconstructs fixed validation crops before and after training (PSNR, grids, codes)."""

    def __init__(self, images: torch.Tensor, out: Path, n_grid: int = 16) -> None:
        self.images = images  # (N, C, H, W) in [-1, 1]
        self.out = out
        self.n_grid = n_grid
        self.before: dict[str, Any] = {}
        self.after: dict[str, Any] = {}

    @torch.no_grad()
    def _probe(self, pl_module: pl.LightningModule, name: str) -> dict[str, Any]:
        model = pl_module.model
        was_training = model.training
        model.eval()
        try:
            x = self.images.to(pl_module.device)
            quant, _, info = model.encode(x)
            xrec = model.decode(quant)
        finally:
            model.train(was_training)
        counts = histogram(info[2], model.n_embed)
        usage, perplexity = codebook_stats(counts)
        save_image_grid(xrec[: self.n_grid], self.out / name, nrow=4)
        return {
            "psnr": float(psnr(xrec, x)),
            "codebook_usage": float(usage),
            "perplexity": float(perplexity),
        }

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        save_image_grid(self.images[: self.n_grid], self.out / "inputs.png", nrow=4)
        self.before = self._probe(pl_module, "reconstructions_step0.png")
        self.start = time.perf_counter()

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.seconds = time.perf_counter() - self.start
        self.after = self._probe(pl_module, "reconstructions.png")


def _probe_images(size: int, n: int = 64) -> torch.Tensor:
    from taming.data.demo import SkimagePhotos

    ds = SkimagePhotos(size=size, split="validation", length=n)
    x = torch.stack([torch.from_numpy(ds[i]["image"]) for i in range(len(ds))])  # (N, H, W, C)
    return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)


def vqgan_stage(ctx: DemoContext) -> StageResult:
    """Train the demo VQGAN into `ctx.out` (see the module docstring)."""
    from taming.train.run import TrainOptions, run_training

    out = ctx.out
    out.mkdir(parents=True, exist_ok=True)
    for old in ("checkpoints", "configs", "images"):  # a fresh run each time
        shutil.rmtree(out / old, ignore_errors=True)
    (out / "metrics.csv").unlink(missing_ok=True)
    config = demo_vqgan_config(ctx.steps, ctx.size, ctx.batch_size, ctx.perceptual, ctx.max_minutes)
    if not ctx.progress:
        config["lightning"]["trainer"]["enable_progress_bar"] = False
    probe = _ReconstructionProbe(_probe_images(ctx.size), out)
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp) / "skimage_demo.yaml"
        base.write_text(OmegaConf.to_yaml(OmegaConf.create(config)))
        opts = TrainOptions(
            base=[str(base)],
            seed=ctx.seed,
            run_dir=str(out),
            save_every=10**9,
            callbacks=[probe],
        )
        result = run_training(opts)
    seconds = time.perf_counter() - t0
    metrics = {
        "psnr_before": round(probe.before["psnr"], 3),
        "psnr_after": round(probe.after["psnr"], 3),
        "psnr_gain": round(probe.after["psnr"] - probe.before["psnr"], 3),
        "codebook_usage": round(probe.after["codebook_usage"], 4),
        "perplexity": round(probe.after["perplexity"], 2),
        "codebook_usage_before": round(probe.before["codebook_usage"], 4),
        "steps": int(result.step_count),
        "batch_size": ctx.batch_size,
        "size": ctx.size,
        "train_seconds": round(getattr(probe, "seconds", math.nan), 1),
        "seconds": round(seconds, 1),
    }
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
    files = {
        "inputs": out / "inputs.png",
        "reconstructions (step 0)": out / "reconstructions_step0.png",
        "reconstructions": out / "reconstructions.png",
        "metrics": out / "metrics.json",
        "checkpoint": out / "checkpoints" / "last.ckpt",
    }
    return StageResult("vqgan", out, files, metrics)


# ---------------------------------------------------------------------------------------------
# second stage

DEMO_TRANSFORMER_STEPS = 900
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
    from taming.data.demo import SkimagePhotos

    ds = SkimagePhotos(size=size, split=split, length=n)
    images, codes = [], []
    for start in range(0, n, batch):
        x = torch.stack(
            [torch.from_numpy(ds[i]["image"]) for i in range(start, min(n, start + batch))]
        )
        x = x.permute(0, 3, 1, 2).contiguous()  # (B, H, W, C) -> (B, C, H, W)
        _, z = model.encode_to_z(x)  # (B, h*w)
        images.append(x)
        codes.append(z)
    return torch.cat(images), torch.cat(codes)


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
    predicts `z_0..z_{L-1}`. minGPT AdamW groups, linear warmup (default: 10% of the steps,
    at most 40) then cosine decay to 10%.
    """
    from tqdm import tqdm

    from taming.train.net2net_module import transformer_param_groups

    groups = transformer_param_groups(gpt, weight_decay=0.01)
    for g in groups:
        del g["names"]
    opt = torch.optim.AdamW(groups, lr=lr, betas=(0.9, 0.95))
    if warmup is None:
        warmup = max(1, min(40, steps // 10))
    g = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    gpt.train()
    done = 0
    for step in tqdm(range(steps), desc="transformer", disable=not progress):
        if max_seconds is not None and time.perf_counter() - t0 > max_seconds:
            logger.warning("transformer: time limit reached after %d of %d steps", step, steps)
            break
        scale = (
            min(1.0, (step + 1) / warmup)
            if step < warmup
            else (0.1 + 0.45 * (1 + math.cos(math.pi * (step - warmup) / max(1, steps - warmup))))
        )
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


Stage = Callable[[DemoContext], StageResult]
# Stages run in order; later stages read earlier results from ctx.results[name].
STAGES: list[Stage] = [vqgan_stage, transformer_stage]


def run_demo(ctx: DemoContext, stages: list[Stage] | None = None) -> list[StageResult]:
    """Run the demo stages in order; returns their results."""
    results = []
    for stage in STAGES if stages is None else stages:
        res = stage(ctx)
        ctx.results[res.name] = res
        results.append(res)
    return results
