"""The demo's first stage: a small VQGAN trained by the regular trainer on scikit-image photos.

Esser et al. 2021, section 3.1, at CPU size (f4, 16x16 codes at 64 px, L1 reconstruction, a
PatchGAN discriminator from 60% of the steps on). `vqgan_stage` trains with
`taming.train.run.run_training`, and probes 64 fixed validation crops before and after
training with the trainer's own forward pass (`taming.train.gan_step.autoencode`): PSNR
(`taming.metrics.image.psnr`), codebook usage and perplexity (`taming.metrics.codebook`).
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from omegaconf import OmegaConf

from taming.metrics.codebook import codebook_stats, histogram
from taming.metrics.image import psnr
from taming.train.callbacks import save_image_grid
from taming.train.demo.context import DemoContext, StageResult
from taming.train.demo.crops import photo_crops
from taming.train.gan_step import autoencode

__all__ = ["demo_vqgan_config", "vqgan_stage"]


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
            xrec, _, indices = autoencode(model, x)  # the trainer's own forward pass
        finally:
            model.train(was_training)
        counts = histogram(indices, model.n_embed)
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
    probe = _ReconstructionProbe(photo_crops("validation", ctx.size, 64), out)
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
