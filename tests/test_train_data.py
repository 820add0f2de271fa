"""`taming train --data/--val-data/--first-stage` and the seeded split of one image folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taming.commands.train_data import overrides_from_flags
from taming.config import ConfigError, instantiate_from_config, load_config
from taming.data.folder import split_paths

REPO = Path(__file__).resolve().parents[1]
SMALL = str(REPO / "configs/vqgan/folder_small.yaml")
GPT_SMALL = str(REPO / "configs/transformer/folder_small.yaml")
FOLDER_PRESETS = [
    "vqgan/folder_small.yaml",
    "vqgan/folder_vqgan.yaml",
    "vqgan/folder_f8.yaml",
]


@pytest.fixture()
def photos(tmp_path) -> Path:
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(20):
        Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(folder / f"{i}.png")
    return folder


def test_split_is_seeded_disjoint_and_complete():
    paths = [f"img{i:03d}.png" for i in range(48)]
    train, val = split_paths(paths, "train"), split_paths(paths, "validation")
    assert len(val) == 5  # round(0.1 * 48)
    assert sorted(train + val) == paths and not set(train) & set(val)
    assert split_paths(paths, "validation") == val  # same seed, same split
    assert split_paths(paths, "validation", 0.1, 1) != val  # another seed, another split
    assert split_paths(paths[:1], "train") == paths[:1]  # one image: it trains
    assert split_paths(paths[:3], "validation", 0.1) != []  # at least one validates
    with pytest.raises(ValueError, match="split"):
        split_paths(paths, "test")


def test_data_flag_splits_one_folder(photos):
    cfg = load_config([SMALL], overrides_from_flags([SMALL], data=str(photos)))
    train = instantiate_from_config(cfg.data.params.train)
    val = instantiate_from_config(cfg.data.params.validation)
    assert len(train) == 18 and len(val) == 2
    assert not {Path(p).name for p in train.labels["file_path_"]} & {
        Path(p).name for p in val.labels["file_path_"]
    }
    assert train[0]["image"].shape == (64, 64, 3)


def test_val_data_flag_uses_two_folders(photos, tmp_path):
    val_dir = tmp_path / "val"
    val_dir.mkdir()
    for p in sorted(photos.iterdir())[:3]:
        shutil.copy(p, val_dir / p.name)
    ov = overrides_from_flags([SMALL], data=str(photos), val_data=str(val_dir))
    cfg = load_config([SMALL], ov)
    assert len(instantiate_from_config(cfg.data.params.train)) == 20
    assert len(instantiate_from_config(cfg.data.params.validation)) == 3


def test_flag_errors_are_one_line(photos):
    with pytest.raises(ConfigError, match="needs --data"):
        overrides_from_flags([SMALL], val_data=str(photos))
    demo = str(REPO / "configs/vqgan/skimage_demo.yaml")
    with pytest.raises(ConfigError, match="not an image folder"):
        overrides_from_flags([demo], data=str(photos))
    with pytest.raises(ConfigError, match="not a transformer config"):
        overrides_from_flags([SMALL], first_stage=str(photos))
    with pytest.raises(ConfigError, match="not a run folder"):
        overrides_from_flags([GPT_SMALL], first_stage=str(photos))


def test_paths_stay_strings(tmp_path):
    odd = tmp_path / "123"
    odd.mkdir()
    Image.new("RGB", (8, 8)).save(odd / "a.png")
    cfg = load_config([SMALL], overrides_from_flags([SMALL], data=str(odd)))
    assert cfg.data.params.train.params.root_or_list == str(odd)


@pytest.mark.parametrize("name", FOLDER_PRESETS)
def test_folder_presets_build(name, photos):
    path = str(REPO / "configs" / name)
    cfg = load_config([path], overrides_from_flags([path], data=str(photos)))
    assert cfg.data.params.train.target == "taming.data.folder.ImageFolderDataset"
    if name.endswith("folder_small.yaml"):  # the CPU preset: build it (the others are big)
        model = instantiate_from_config(cfg.model)
        model.init_loss()  # no LPIPS network, no weights file
        assert model.loss.perceptual_loss is None
        assert sum(p.numel() for p in model.parameters()) < 3_000_000
    factor = 2 ** (len(cfg.model.params.ddconfig.ch_mult) - 1)
    assert (
        factor
        == {"folder_small.yaml": 4, "folder_vqgan.yaml": 16, "folder_f8.yaml": 8}[Path(name).name]
    )


def test_own_photos_training_half_in_process(photos, tmp_path, monkeypatch, capsys):
    """Fast end-to-end variant (the full one is tests/test_readme.py, slow): the documented
    flags only, one step each; the transformer's first stage carries the tokenizer run's
    weights, and its sizes follow that run."""
    import torch

    import taming
    from taming.cli import main

    monkeypatch.chdir(tmp_path)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models on shared cores
    try:
        vq = ["train", "-b", SMALL, "--data", "photos", "--max_steps", "1", "-n", "vq"]
        assert main([*vq, "--no-test"]) == 0
        [vq_run] = sorted(Path("logs").glob("*_vq"))
        gpt = ["train", "-b", GPT_SMALL, "--first-stage", str(vq_run), "--data", "photos"]
        assert main([*gpt, "--max_steps", "1", "-n", "gpt", "--no-test"]) == 0
        [gpt_run] = sorted(Path("logs").glob("*_gpt"))
        model = taming.load(gpt_run)
        tokenizer = taming.load(vq_run)
    finally:
        torch.set_num_threads(threads)
    assert model.transformer.vocab_size == 256 and model.transformer.block_size == 256
    for (name, p), (name2, q) in zip(
        model.first_stage_model.state_dict().items(), tokenizer.state_dict().items(), strict=True
    ):
        assert name == name2 and torch.equal(p, q), name
    with pytest.raises(ConfigError, match="needs --data"):
        overrides_from_flags([GPT_SMALL], val_data="photos")
