"""Tiny `Net2NetTransformer`s built from a fixed seed, shared by the sampling tests.

16 px images, an f2 first stage (8x8 codes, 32 of them), a one-layer GPT whose output head is
scaled up (a peakier, input-dependent distribution than the 0.02 init). Unconditional, class-
conditional (with condition dropout, for guidance) and segmentation-conditioned variants; the
random weights are a function of the kind alone.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import yaml

from taming.cond import Net2NetTransformer

N_LABELS = 5
STEP = 7  # the optimizer step recorded in the runs' checkpoints
SEEDS = {"uncond": 0, "class": 1, "seg": 2}


def tiny_vq(
    in_channels: int = 3,
    target: str = "taming.models.vqgan.VQModel",
    n_embed: int = 32,
    **extra,
) -> dict:
    params = {
        "embed_dim": 8,
        "n_embed": n_embed,
        "ddconfig": {
            "double_z": False,
            "z_channels": 8,
            "resolution": 16,
            "in_channels": in_channels,
            "out_ch": in_channels,
            "ch": 32,
            "ch_mult": [1, 2],
            "num_res_blocks": 1,
            "attn_resolutions": [],
            "dropout": 0.0,
        },
        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
        **extra,
    }
    return {"target": target, "params": params}


def tiny_gpt(block_size: int = 72) -> dict:
    return {
        "target": "taming.modules.transformer.mingpt.GPT",
        "params": {
            "vocab_size": 32,
            "block_size": block_size,
            "n_layer": 1,
            "n_head": 2,
            "n_embd": 32,
        },
    }


CONFIGS: dict[str, dict[str, Any]] = {
    "uncond": {"cond_stage_config": "__is_unconditional__"},
    "class": {
        "cond_stage_config": {
            "target": "taming.modules.util.Labelator",
            "params": {"n_classes": 4},
        },
        "cond_stage_key": "class_label",
        "cond_drop_prob": 0.1,
    },
    "seg": {
        "cond_stage_config": tiny_vq(
            N_LABELS, "taming.models.vqgan.VQSegmentationModel", n_labels=N_LABELS
        ),
        "cond_stage_key": "segmentation",
        "transformer_config": tiny_gpt(block_size=128),
    },
}


def model_params(kind: str) -> dict[str, Any]:
    """The `params` of the model config of `kind`."""
    return {"transformer_config": tiny_gpt(), "first_stage_config": tiny_vq(), **CONFIGS[kind]}


def build_model(kind: str) -> Net2NetTransformer:
    """The tiny model of `kind` (uncond, class, seg), random weights from its fixed seed."""
    params = model_params(kind)
    torch.manual_seed(SEEDS[kind])
    model = Net2NetTransformer(**params)
    with torch.no_grad():  # a peakier, input-dependent distribution than the 0.02 init
        model.transformer.head.weight.mul_(40)
    return model.eval()


def write_run(root: Path, kind: str, extra: dict[str, Any] | None = None) -> Path:
    """A run folder of the model of `kind`, written the way `taming train` writes one
    (`configs/*-project.yaml`, `checkpoints/last.ckpt` with `model.`-prefixed keys and the step
    count); `extra` adds top-level config sections (e.g. `data`)."""
    cfg = {
        "model": {
            "target": "taming.models.cond_transformer.Net2NetTransformer",
            "params": model_params(kind),
        },
        **(extra or {}),
    }
    run = root / f"2026-01-01T00-00-00_{kind}"
    (run / "configs").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "configs" / "2026-01-01T00-00-00-project.yaml").write_text(yaml.safe_dump(cfg))
    state = {f"model.{k}": v for k, v in build_model(kind).state_dict().items()}
    ckpt = {"state_dict": state, "global_step": STEP, "taming": {"step_count": STEP}}
    torch.save(ckpt, run / "checkpoints" / "last.ckpt")
    return run
