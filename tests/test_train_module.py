"""VQGANModule / run_training behaviour: step counting, Gumbel schedule, accumulation,
segmentation and EMA models, the learning-rate rule, data wiring and bad images."""

from __future__ import annotations

import csv
import logging
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from torch.utils.data import Dataset

from taming.config import ConfigError
from taming.train.datamodule import DataModuleFromConfig, available_cpus
from taming.train.run import TrainOptions, run_training

QUIET = [
    "lightning.trainer.enable_progress_bar=false",
    "lightning.trainer.enable_model_summary=false",
    "lightning.trainer.log_every_n_steps=1",
    "lightning.trainer.num_sanity_val_steps=0",
    "lightning.trainer.accelerator=cpu",
    "lightning.callbacks.image_logger.params.disabled=true",
]

DDCONFIG = {
    "double_z": False,
    "z_channels": 4,
    "resolution": 16,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
VQ_LOSS = {
    "target": "taming.losses.vqperceptual.VQLPIPSWithDiscriminator",
    "params": {"disc_start": 2, "disc_num_layers": 2, "disc_ndf": 8, "perceptual_weight": 0.0},
}


class RandomImages(Dataset):
    """`n` random 16x16 images (channels-last in [-1, 1]) under `key`; one-hot if `labels`."""

    def __init__(self, n: int = 8, key: str = "image", labels: int = 0) -> None:
        g = torch.Generator().manual_seed(0)
        if labels:
            idx = torch.randint(0, labels, (n, 16, 16), generator=g)
            self.x = torch.nn.functional.one_hot(idx, labels).float().numpy()
        else:
            self.x = (torch.rand(n, 16, 16, 3, generator=g) * 2 - 1).numpy()
        self.key = key

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {self.key: self.x[i]}


@pytest.fixture(autouse=True)
def _trust_this_module(monkeypatch):
    """The configs here name this module's dataset: trusted by prefix, as a user would."""
    monkeypatch.setenv("TAMING_TRUSTED_TARGETS", "test_train_module.")


def write_config(path: Path, model: dict, data: dict, base_lr: float = 1e-4) -> Path:
    model = {"base_learning_rate": base_lr, **model}
    path.write_text(yaml.safe_dump({"model": model, "data": data}))
    return path


def random_data(batch_size: int = 2, n: int = 8, **kw) -> dict:
    return {
        "target": "main.DataModuleFromConfig",
        "params": {
            "batch_size": batch_size,
            "num_workers": 0,
            "train": {"target": "test_train_module.RandomImages", "params": {"n": n, **kw}},
        },
    }


def vq_model(**params) -> dict:
    return {
        "target": "taming.models.vqgan.VQModel",
        "params": {
            "embed_dim": 4,
            "n_embed": 16,
            "ddconfig": DDCONFIG,
            "lossconfig": VQ_LOSS,
            **params,
        },
    }


def train(tmp_path: Path, cfg: Path, max_steps: int, *overrides: str, **trainer):
    opts = TrainOptions(
        base=[str(cfg)],
        overrides=[*QUIET, *overrides],
        logdir=str(tmp_path / "logs"),
        trainer={"max_steps": max_steps, **trainer},
    )
    return run_training(opts)


def metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def values(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) not in (None, "")]


def series(rows: list[dict[str, str]], key: str) -> dict[int, float]:
    """`{step: value}` of a logged metric."""
    return {int(r["step"]): float(r[key]) for r in rows if r.get(key) not in (None, "")}


# ---------------------------------------------------------------------------------------------


def test_steps_disc_start_lr_rule_and_logs(tmp_path, caplog):
    cfg = write_config(tmp_path / "c.yaml", vq_model(), random_data(batch_size=2), base_lr=1e-4)
    with caplog.at_level(logging.INFO, logger="taming.train.run"):
        res = train(tmp_path, cfg, 4)
    assert "learning rate = 1 (accumulate_grad_batches) x 1 (devices) x 1 (nodes) x 2" in (
        caplog.text
    )
    module = res.module
    assert module.learning_rate == pytest.approx(2e-4)
    opt_ae, opt_disc = res.trainer.optimizers
    assert opt_ae.defaults["betas"] == (0.5, 0.9) and opt_disc.defaults["betas"] == (0.5, 0.9)
    assert opt_ae.defaults["lr"] == pytest.approx(2e-4)
    assert res.step_count == 4 and res.global_step == 8  # two optimizer steps per batch
    rows = metrics(res.logdir)
    factor = series(rows, "train/disc_factor_step")
    assert factor == {0: 0.0, 1: 0.0, 2: 1.0, 3: 1.0}  # disc_start=2 counts batches
    for key in ("total_loss", "quant_loss", "nll_loss", "rec_loss", "p_loss", "d_weight"):
        assert values(rows, f"train/{key}_step"), key
    for key in ("g_loss", "disc_loss", "logits_real", "logits_fake"):
        assert values(rows, f"train/{key}_step"), key
    assert values(rows, "train/aeloss_step") and values(rows, "train/discloss_step")
    usage = values(rows, "train/codebook_usage")
    perplexity = values(rows, "train/perplexity")
    assert usage and 0 < usage[-1] <= 1 and 1 <= perplexity[-1] <= 16


def test_gumbel_temperature_follows_the_schedule(tmp_path):
    model = {
        "target": "taming.models.vqgan.GumbelVQ",
        "params": {
            "embed_dim": 4,
            "n_embed": 16,
            "ddconfig": DDCONFIG,
            "lossconfig": VQ_LOSS,
            "temperature_scheduler_config": {
                "target": "taming.lr_scheduler.LambdaWarmUpCosineScheduler",
                "params": {
                    "warm_up_steps": 0,
                    "max_decay_steps": 4,
                    "lr_start": 0.9,
                    "lr_max": 0.9,
                    "lr_min": 0.1,
                },
            },
        },
    }
    cfg = write_config(tmp_path / "g.yaml", model, random_data())
    res = train(tmp_path, cfg, 3)
    temps = series(metrics(res.logdir), "temperature")
    expected = {n: 0.1 + 0.5 * 0.8 * (1 + np.cos(np.pi * n / 4)) for n in range(3)}
    assert temps.keys() == expected.keys()
    for n, t in temps.items():
        assert t == pytest.approx(expected[n], rel=1e-6)
    assert res.module.model.quantize.temperature == pytest.approx(expected[2])


def test_accumulate_grad_batches(tmp_path):
    cfg = write_config(tmp_path / "a.yaml", vq_model(), random_data(batch_size=2, n=8))
    res = train(tmp_path, cfg, 2, accumulate_grad_batches=2)  # 4 batches -> 2 steps
    assert res.step_count == 2 and res.global_step == 4
    assert res.module.learning_rate == pytest.approx(2 * 2 * 1e-4)
    state = res.trainer.optimizers[0].state
    assert all(float(s["step"]) == 2 for s in state.values())
    assert res.trainer.fit_loop.epoch_loop.batch_progress.current.completed == 4


def test_segmentation_model_has_one_optimizer(tmp_path):
    dd = {**DDCONFIG, "in_channels": 5, "out_ch": 5}
    model = {
        "target": "taming.models.vqgan.VQSegmentationModel",
        "params": {
            "n_labels": 5,
            "embed_dim": 4,
            "n_embed": 16,
            "image_key": "segmentation",
            "ddconfig": dd,
            "lossconfig": {"target": "taming.modules.losses.segmentation.BCELossWithQuant"},
        },
    }
    cfg = write_config(tmp_path / "s.yaml", model, random_data(key="segmentation", labels=5))
    res = train(tmp_path, cfg, 3)
    assert len(res.trainer.optimizers) == 1
    assert res.step_count == 3 and res.global_step == 3
    assert values(metrics(res.logdir), "train/bce_loss_step")


def test_ema_codebook_is_not_optimised(tmp_path):
    model = vq_model()
    model["target"] = "taming.models.vqgan.EMAVQ"
    cfg = write_config(tmp_path / "e.yaml", model, random_data())
    res = train(tmp_path, cfg, 2)
    ema = res.module.model.quantize
    optimised = {id(p) for g in res.trainer.optimizers[0].param_groups for p in g["params"]}
    assert not any(id(p) in optimised for p in ema.parameters())
    assert res.step_count == 2


def test_datamodule_defaults_and_loaders():
    dm = DataModuleFromConfig(
        batch_size=3,
        train={"target": "test_train_module.RandomImages", "params": {"n": 7}},
        validation={"target": "test_train_module.RandomImages", "params": {"n": 5}},
        wrap=True,
    )
    assert dm.num_workers == min(6, available_cpus())  # 2 x batch_size, capped by the CPUs
    dm.setup()
    train_loader, val_loader = dm.train_dataloader(), dm.val_dataloader()
    assert isinstance(train_loader.sampler, torch.utils.data.RandomSampler)
    assert isinstance(val_loader.sampler, torch.utils.data.SequentialSampler)
    from lightning.pytorch.utilities.model_helpers import is_overridden

    assert is_overridden("val_dataloader", dm) and not is_overridden("test_dataloader", dm)
    first = next(
        iter(
            DataModuleFromConfig(
                batch_size=3,
                train={"target": "test_train_module.RandomImages", "params": {"n": 7}},
                num_workers=0,
            ).train_dataloader()
        )
    )
    assert first["image"].shape == (3, 16, 16, 3)
    with pytest.raises(ConfigError, match=r"data.params.train: .*not found"):
        DataModuleFromConfig(
            batch_size=1,
            train={
                "target": "taming.data.folder.ImageFolderDataset",
                "params": {"root_or_list": "/no/such/folder"},
            },
        ).setup()


def _bad_folder(root: Path) -> Path:
    root.mkdir()
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 255, (24, 24, 3), dtype=np.uint8)
    Image.fromarray(rgb).save(root / "a_ok.png")
    Image.fromarray(rgb).convert("CMYK").save(root / "b_cmyk.jpg")
    gray16 = (rng.integers(0, 65535, (20, 28))).astype(np.uint16)
    Image.fromarray(gray16).save(root / "c_16bit.png")
    assert Image.open(root / "c_16bit.png").mode.startswith("I")
    Image.fromarray(rgb[:10, :10]).save(root / "d_tiny.png")  # 10x10: upscaled to the crop
    (root / "e_corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"garbage" * 20)
    Image.fromarray(rgb).convert("RGBA").save(root / "f_rgba.png")
    Image.fromarray(rgb).convert("L").save(root / "g_gray.png")
    exif = Image.Exif()
    exif[0x0112] = 6  # orientation: rotate 90 degrees on display
    Image.fromarray(rgb[:, :20]).save(root / "h_exif_rotated.jpg", exif=exif)
    return root


def test_bad_images_train_and_the_skipped_count_is_reported(tmp_path, caplog):
    folder = _bad_folder(tmp_path / "imgs")
    data = {
        "target": "main.DataModuleFromConfig",
        "params": {
            "batch_size": 2,
            "num_workers": 2,
            "train": {
                "target": "taming.data.folder.ImageFolderDataset",
                "params": {"root_or_list": str(folder), "size": 16, "random_crop": True},
            },
        },
    }
    cfg = write_config(tmp_path / "b.yaml", vq_model(), data)
    with caplog.at_level(logging.WARNING):
        res = train(tmp_path, cfg, 8)  # two epochs of 4 batches: every file is read
    assert res.step_count == 8
    skipped = values(metrics(res.logdir), "data/skipped_train")
    assert skipped and skipped[-1] == 1.0
    assert "1 unreadable file(s) skipped in the train set" in caplog.text
    assert "e_corrupt.png" in caplog.text
    losses = values(metrics(res.logdir), "train/aeloss_step")
    assert losses and np.all(np.isfinite(losses))
