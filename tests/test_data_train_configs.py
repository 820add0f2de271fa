"""The original YAMLs train a few steps through `taming train` on the original data layouts.

One config per conditioning kind, with its data section pointed at tiny trees built from
../shared/data (`tests/data_trees.py`) and the models shrunk by an overlay config:
segmentation (`drin_transformer.yaml` with ADE20K label maps as the condition), depth
(`drin_transformer.yaml` on the D-RIN classes with depth), layout
(`coco_scene_images_transformer.yaml` on `data/coco_annotations_100`) and
`imagenet_vqgan.yaml` on a tiny ImageNet tree under a temporary XDG_CACHE_HOME.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import yaml

from taming.cli import main

REPO = Path(__file__).resolve().parents[1]
LEGACY = REPO / "configs" / "legacy"
QUIET = [
    "lightning.trainer.enable_progress_bar=false",
    "lightning.trainer.enable_model_summary=false",
    "lightning.trainer.log_every_n_steps=1",
    "lightning.trainer.num_sanity_val_steps=0",
    "lightning.trainer.limit_val_batches=1",
    "lightning.trainer.accelerator=cpu",
    "lightning.callbacks.image_logger.params.batch_frequency=1000",
]
DDCONFIG = {
    "double_z": False,
    "z_channels": 8,
    "resolution": 16,
    "ch": 32,
    "ch_mult": [1, 2],
    "num_res_blocks": 1,
    "attn_resolutions": [],
    "dropout": 0.0,
}
GPT = {"vocab_size": 32, "block_size": 160, "n_layer": 1, "n_head": 2, "n_embd": 32}


@pytest.fixture(scope="module")
def tree(shared_dir: Path, tmp_path_factory) -> Path:
    import data_trees

    data = shared_dir / "data"
    if not (data / "drin_examples.txt").is_file():
        pytest.skip(f"original sample data not found in {data}")
    root = tmp_path_factory.mktemp("tree")
    data_trees.build_all(data, root)
    return root


def _vq_params(in_channels: int, n_embed: int = 32) -> dict:
    return {
        "embed_dim": 8,
        "n_embed": n_embed,
        "ddconfig": {**DDCONFIG, "in_channels": in_channels, "out_ch": in_channels},
    }


def _vq_ckpt(path: Path, in_channels: int, n_embed: int = 32) -> str:
    from taming.config import instantiate_from_config

    torch.manual_seed(0)
    params = {
        **_vq_params(in_channels, n_embed),
        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
    }
    vq = instantiate_from_config({"target": "taming.models.vqgan.VQModel", "params": params})
    torch.save({"state_dict": {f"model.{k}": v for k, v in vq.state_dict().items()}}, path)
    return str(path)


def _train(tmp_path: Path, config: str, overlay: dict, steps: int = 2) -> Path:
    extra = tmp_path / "overlay.yaml"
    extra.write_text(yaml.safe_dump(overlay))
    logs = tmp_path / "logs"
    argv = ["train", "-b", str(LEGACY / config), str(extra), "-t", "-l", str(logs)]
    assert main([*argv, "--max_steps", str(steps), *QUIET]) == 0
    (run,) = [p for p in logs.iterdir() if p.is_dir()]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["taming"]["step_count"] == steps
    return run


def _data(train: dict, validation: dict) -> dict:
    return {"params": {"batch_size": 2, "num_workers": 0, "train": train, "validation": validation}}


def _transformer(tmp_path: Path, cond_channels: int, cond_key: str) -> dict:
    return {
        "model": {
            "params": {
                "cond_stage_key": cond_key,
                "transformer_config": {"params": GPT},
                "first_stage_config": {
                    "params": {**_vq_params(3), "ckpt_path": _vq_ckpt(tmp_path / "vq.ckpt", 3)}
                },
                "cond_stage_config": {
                    "params": {
                        **_vq_params(cond_channels),
                        "ckpt_path": _vq_ckpt(tmp_path / "cond.ckpt", cond_channels),
                    }
                },
            }
        }
    }


def test_drin_transformer_trains_on_depth(tree: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tree)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tree / "xdg"))
    overlay = _transformer(tmp_path, 1, "depth")
    overlay["data"] = _data(
        {"target": "taming.data.imagenet.RINTrainWithDepth", "params": {"size": 16}},
        {"target": "taming.data.imagenet.RINValidationWithDepth", "params": {"size": 16}},
    )
    run = _train(tmp_path, "drin_transformer.yaml", overlay)
    assert run.name.endswith("_drin_transformer")


def test_transformer_trains_on_ade20k_segmentations(tree: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tree)
    overlay = _transformer(tmp_path, 151, "segmentation")
    params = {"size": 16, "crop_size": 16}
    overlay["data"] = _data(
        {"target": "taming.data.ade20k.ADE20kTrain", "params": params},
        {"target": "taming.data.ade20k.ADE20kValidation", "params": params},
    )
    _train(tmp_path, "drin_transformer.yaml", overlay)


def test_coco_scene_transformer_trains_on_layouts(tree: Path, tmp_path: Path, monkeypatch):
    monkeypatch.chdir(tree)  # data_path: data/coco_annotations_100, as in the config
    vocab = 8192  # layout tokens and image codes share the vocabulary (no_tokens 8192)
    overlay = {
        "model": {
            "params": {
                "transformer_config": {"params": {**GPT, "vocab_size": vocab, "block_size": 160}},
                "first_stage_config": {
                    "params": {
                        **_vq_params(3, vocab),
                        "ckpt_path": _vq_ckpt(tmp_path / "vq.ckpt", 3, vocab),
                    }
                },
            }
        },
        "data": {
            "params": {
                "batch_size": 2,
                "num_workers": 0,
                "train": {"params": {"target_image_size": 16}},
                "validation": {"params": {"target_image_size": 16}},
            }
        },
    }
    _train(tmp_path, "coco_scene_images_transformer.yaml", overlay)


def test_imagenet_vqgan_trains_on_a_tiny_imagenet(tree: Path, tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tree / "xdg"))
    overlay = {
        "model": {
            "params": {
                **_vq_params(3),
                "lossconfig": {
                    "params": {"perceptual_weight": 0.0, "disc_num_layers": 1, "disc_ndf": 8}
                },
            }
        },
        "data": _data({"params": {"config": {"size": 16}}}, {"params": {"config": {"size": 16}}}),
    }
    _train(tmp_path, "imagenet_vqgan.yaml", overlay)
