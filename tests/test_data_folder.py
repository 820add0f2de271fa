"""User image data: folder trees, file lists, CustomTrain/CustomTest and the original YAML."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from taming.config import ConfigError, instantiate_from_config, load_config
from taming.data.custom import CustomTest, CustomTrain
from taming.data.folder import ImageFolderDataset, find_images, read_image_list


def _img(path: Path, w: int = 40, h: int = 30, value: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    arr = np.full((h, w, 3), value, np.uint8)
    arr[:, : w // 2] = 255 - value  # left half differs, to see flips
    Image.fromarray(arr).save(path)
    return path


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "photos"
    _img(root / "a.jpg")
    _img(root / "B.PNG")
    _img(root / "x" / "y" / "c.webp")
    _img(root / ".cache" / "d.png")  # hidden folder: ignored
    (root / "readme.md").write_text("hi")
    return root


def test_find_images_recursive_sorted(tree: Path):
    names = [Path(p).relative_to(tree).as_posix() for p in find_images(tree)]
    assert names == ["B.PNG", "a.jpg", "x/y/c.webp"]
    assert [Path(p).name for p in find_images(tree, extensions=["png"])] == ["B.PNG"]


def test_find_images_follows_symlinked_folders_once(tree: Path, tmp_path: Path):
    other = tmp_path / "elsewhere"
    _img(other / "e.png")
    os.symlink(other, tree / "linked")
    os.symlink(tree, tree / "x" / "loop")  # a loop must not hang or duplicate
    names = sorted(Path(p).name for p in find_images(tree))
    assert names == ["B.PNG", "a.jpg", "c.webp", "e.png"]


def test_folder_dataset_examples(tree: Path):
    ds = ImageFolderDataset(str(tree), size=24)
    assert len(ds) == 3
    ex = ds[0]
    assert set(ex) == {"image", "file_path_"}
    assert ex["image"].shape == (24, 24, 3) and ex["image"].dtype == np.float32
    assert -1.0 <= ex["image"].min() and ex["image"].max() <= 1.0
    # center crop of a 32x24 resize: left columns white, right columns black
    assert ex["image"][:, 0].mean() > 0.9 and ex["image"][:, -1].mean() < -0.9


def test_random_flip_flips_sometimes(tree: Path):
    ds = ImageFolderDataset(str(tree), size=24, random_flip=True)
    lefts = {bool(ds[0]["image"][:, 0].mean() > 0) for _ in range(40)}
    assert lefts == {True, False}


def test_file_list_relative_to_list_folder(tmp_path: Path, monkeypatch, caplog):
    data = tmp_path / "data"
    _img(data / "imgs" / "one.png")
    absolute = _img(tmp_path / "abs" / "two.png")
    cwd_dir = tmp_path / "cwd"
    _img(cwd_dir / "three.png")
    lists = data / "lists"
    lists.mkdir()
    listing = lists / "train.txt"
    listing.write_text(
        f"# my images\n../imgs/one.png\n\n{absolute}\nthree.png\nmissing.png\n", encoding="utf-8"
    )
    monkeypatch.chdir(cwd_dir)
    paths = [Path(p).resolve() for p in read_image_list(listing)]
    assert paths == [
        (data / "imgs" / "one.png").resolve(),
        absolute.resolve(),
        (cwd_dir / "three.png").resolve(),  # not next to the list, but relative to the CWD
        (lists / "missing.png").resolve(),
    ]
    ds = ImageFolderDataset(str(listing), size=16)
    caplog.set_level(logging.WARNING)
    images = [ds[i]["image"] for i in range(len(ds))]
    assert all(im.shape == (16, 16, 3) for im in images)
    assert ds.num_skipped == 1
    assert any("missing.png" in r.getMessage() for r in caplog.records)


def test_clear_errors(tmp_path: Path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageFolderDataset(str(tmp_path / "nowhere"))
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "notes.txt").write_text("x")
    with pytest.raises(ValueError, match=f"no images found under {empty}"):
        ImageFolderDataset(str(empty))
    blank = tmp_path / "blank.txt"
    blank.write_text("\n# nothing\n")
    with pytest.raises(ValueError, match="lists no images"):
        ImageFolderDataset(str(blank))
    with pytest.raises(FileNotFoundError, match="missing.txt"):
        CustomTrain(size=16, training_images_list_file=str(tmp_path / "missing.txt"))


def test_custom_train_test_keep_original_behaviour(tree: Path, tmp_path: Path):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(find_images(tree)) + "\n")
    train = CustomTrain(size=24, training_images_list_file=str(listing))
    test = CustomTest(size=24, test_images_list_file=str(listing))
    assert len(train) == len(test) == 3
    np.testing.assert_array_equal(train[1]["image"], train[1]["image"])  # center crop, no flip
    np.testing.assert_array_equal(train[1]["image"], test[1]["image"])
    aug = CustomTrain(size=24, training_images_list_file=str(listing), random_crop=True)
    assert aug[0]["image"].shape == (24, 24, 3)


def test_original_custom_vqgan_yaml_resolves(shared_dir: Path, tree: Path, tmp_path: Path):
    listing = tmp_path / "list.txt"
    listing.write_text("\n".join(find_images(tree)) + "\n")
    cfg = load_config(
        shared_dir / "original_configs" / "custom_vqgan.yaml",
        [
            f"data.params.train.params.training_images_list_file={listing}",
            f"data.params.validation.params.test_images_list_file={listing}",
        ],
    )
    train = instantiate_from_config(cfg.data.params.train)
    val = instantiate_from_config(cfg.data.params.validation)
    assert isinstance(train, CustomTrain) and isinstance(val, CustomTest)
    assert train[0]["image"].shape == (256, 256, 3)


def test_unknown_keys_fail():
    cfg = {
        "target": "taming.data.folder.ImageFolderDataset",
        "params": {"root_or_list": "x", "sizee": 3},
    }
    with pytest.raises(ConfigError, match="sizee"):
        instantiate_from_config(cfg)
