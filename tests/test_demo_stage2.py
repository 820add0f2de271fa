"""`taming demo`, second stage, fast: a small transformer on the demo tokenizer's codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

import taming
from taming.cli import main
from taming.cond import Net2NetTransformer
from taming.train.demo import DemoContext, StageResult, demo_vqgan_config, transformer_stage

pytest.importorskip("skimage")


def write_vqgan_run(out: Path, size: int) -> Path:
    """A demo-VQGAN run folder as the first stage writes it (random weights, `model.` keys)."""
    from taming.config import instantiate_from_config

    cfg = demo_vqgan_config(size=size)
    cfg.pop("lightning")
    (out / "configs").mkdir(parents=True)
    (out / "checkpoints").mkdir()
    (out / "configs" / "2026-01-01T00-00-00-project.yaml").write_text(yaml.safe_dump(cfg))
    torch.manual_seed(0)
    vq = instantiate_from_config(cfg["model"])
    vq.init_loss()
    state = {f"model.{k}": v for k, v in vq.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 2}, out / "checkpoints" / "last.ckpt")
    (out / "metrics.json").write_text(json.dumps({"psnr_after": 10.0, "steps": 1}))
    return out


def test_transformer_stage_learns_and_writes_samples(tmp_path, capsys):
    out = write_vqgan_run(tmp_path / "demo", size=32)
    ctx = DemoContext(out=out, size=32, progress=False, transformer_steps=40)
    ctx.results["vqgan"] = StageResult("vqgan", out)
    res = transformer_stage(ctx)
    m = res.metrics
    assert m["steps"] == 40 and m["seconds"] > 0
    # the loss decreases clearly (from about ln 256 = 5.5 nats for the untrained model)
    assert m["loss_before"] == pytest.approx(5.55, abs=0.3)
    assert m["loss_after"] < m["loss_before"] - 1.0
    assert m["val_loss_after"] < m["val_loss_before"] - 1.0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["transformer"] == m and metrics["psnr_after"] == 10.0  # first stage's kept

    sizes = {
        "samples.png": (4 * 34 + 2, 4 * 34 + 2),  # 16 samples of 32 px
        "completion.png": (4 * 34 + 2, 8 * 34 + 2),  # 8 rows: original, kept half, 2 samples
        "sliding_wide.png": (64 + 4, 4 * 34 + 2),  # 4 samples of 32x64, one per row
    }
    for name, size in sizes.items():
        assert res.files[next(k for k, v in res.files.items() if v.name == name)].is_file()
        with Image.open(out / name) as img:
            assert img.size == size, name

    # the saved run loads as a transformer and samples with `taming sample`
    model = taming.load(out / "transformer")
    assert isinstance(model, Net2NetTransformer) and model.be_unconditional
    assert model.transformer.block_size == 64  # 8x8 codes
    argv = ["sample", "-r", str(out / "transformer"), "-n", "2", "--size", "32,64"]
    assert main([*argv, "--no-progress", "--device", "cpu"]) == 0
    folder = (
        out / "transformer" / "samples" / "top_k_250_temp_1.00_top_p_1.0_32x64" / "40"
    )  # --size names it
    with Image.open(folder / "000001.png") as img:
        assert img.size == (64, 32)
    capsys.readouterr()
