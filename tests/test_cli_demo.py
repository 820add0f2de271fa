"""`taming demo` in its fast mode: the files exist, the metrics are sane, the model loads."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from PIL import Image

import taming
from taming.cli import main

pytest.importorskip("skimage")


def test_demo_fast_mode_writes_grids_metrics_and_a_loadable_checkpoint(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["demo", "--out", str(out), "--steps", "3", "--size", "32", "--batch-size", "4"]
    assert main([*argv, "--no-progress"]) == 0
    printed = capsys.readouterr().out
    for name in ("inputs.png", "reconstructions_step0.png", "reconstructions.png"):
        path = out / name
        assert str(path) in printed
        with Image.open(path) as img:
            assert img.size == (4 * 34 + 2, 4 * 34 + 2)  # 16 crops of 32 px, 4 per row
    assert str(out / "metrics.json") in printed
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 3
    for key in ("psnr_before", "psnr_after"):
        assert math.isfinite(metrics[key]) and 0 < metrics[key] < 60
    assert metrics["psnr_gain"] == pytest.approx(
        metrics["psnr_after"] - metrics["psnr_before"], abs=2e-3
    )
    assert 0 < metrics["codebook_usage"] <= 1 and metrics["perplexity"] >= 1
    assert metrics["seconds"] > 0
    assert (out / "checkpoints" / "last.ckpt").is_file()
    model = taming.load(out)
    assert model.n_embed == 256


def test_demo_config_file_is_the_demo_config():
    from omegaconf import OmegaConf

    from taming.train.demo import demo_vqgan_config

    path = Path(__file__).resolve().parents[1] / "configs" / "vqgan" / "skimage_demo.yaml"
    assert OmegaConf.to_container(OmegaConf.load(path)) == demo_vqgan_config()
