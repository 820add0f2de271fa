"""A GPT trains on FSQ and on LFQ codes through `taming train`; `taming sample -r RUN` decodes.

Both commands run in subprocesses, as a user runs them: a first stage with the quantizer from
`quantizer_config` (random weights, saved as a checkpoint), a Net2Net transformer config over
its codes (vocabulary = the quantizer's), two training steps, then sampling from the run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from taming.autoencoder import VQModel

QUIET = [
    "lightning.trainer.enable_progress_bar=false",
    "lightning.trainer.enable_model_summary=false",
    "lightning.trainer.log_every_n_steps=1",
    "lightning.trainer.num_sanity_val_steps=0",
    "lightning.trainer.accelerator=cpu",
]
DDCONFIG = {
    "double_z": False,
    "z_channels": 8,
    "resolution": 16,
    "in_channels": 3,
    "out_ch": 3,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
QUANTIZERS = {
    "fsq": ({"target": "taming.quantize.FSQ", "params": {"levels": [5, 3, 3]}}, 45),
    "lfq": ({"target": "taming.quantize.LFQ", "params": {"codebook_size": 32}}, 32),
}


def _images(folder: Path, n: int = 4) -> Path:
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def _config(tmp: Path, kind: str) -> Path:
    quantizer, vocab = QUANTIZERS[kind]
    torch.manual_seed(0)
    first = {"ddconfig": DDCONFIG, "lossconfig": None, "quantizer_config": quantizer}
    ckpt = tmp / f"{kind}_first_stage.ckpt"
    torch.save({"state_dict": VQModel(**first).state_dict()}, ckpt)
    images = _images(tmp / "images")
    cfg = {
        "model": {
            "base_learning_rate": 1e-4,
            "target": "taming.models.cond_transformer.Net2NetTransformer",
            "params": {
                "cond_stage_config": "__is_unconditional__",
                "first_stage_key": "image",
                "transformer_config": {
                    "target": "taming.modules.transformer.mingpt.GPT",
                    "params": {
                        "vocab_size": vocab,
                        "block_size": 64,
                        "n_layer": 1,
                        "n_head": 2,
                        "n_embd": 16,
                    },
                },
                "first_stage_config": {
                    "target": "taming.models.vqgan.VQModel",
                    "params": {
                        "ckpt_path": str(ckpt),
                        "ddconfig": DDCONFIG,
                        "quantizer_config": quantizer,
                        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
                    },
                },
            },
        },
        "data": {
            "target": "taming.train.datamodule.DataModuleFromConfig",
            "params": {
                "batch_size": 2,
                "num_workers": 0,
                "train": {
                    "target": "taming.data.folder.ImageFolderDataset",
                    "params": {"root_or_list": str(images), "size": 16},
                },
            },
        },
    }
    path = tmp / f"{kind}_transformer.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _taming(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "taming.cli", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=cwd, timeout=600)


@pytest.mark.parametrize("kind", sorted(QUANTIZERS))
def test_gpt_trains_on_the_codes_and_samples_decode(tmp_path, kind):
    cfg = _config(tmp_path, kind)
    logs = tmp_path / "logs"
    proc = _taming(
        "train", "-b", str(cfg), "-l", str(logs), "--max_steps", "2", *QUIET, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    (run,) = [p for p in logs.iterdir() if p.is_dir()]
    assert (run / "checkpoints" / "last.ckpt").is_file()
    out = tmp_path / "samples"
    args = ["sample", "-r", str(run), "-n", "3", "-k", "10", "-o", str(out), "--no-progress"]
    proc = _taming(*args, "--device", "cpu", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    files = sorted(out.rglob("[0-9]*.png"))
    assert len(files) == 3
    for f in files:
        with Image.open(f) as img:
            assert img.size == (16, 16)
