"""The built-in demo dataset: crops of scikit-image's bundled photos (no download, no data/)."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from taming.config import instantiate_from_config
from taming.data.demo import SKIMAGE_PHOTOS, SkimagePhotos
from taming.data.utils import custom_collate

pytest.importorskip("skimage")


def test_train_crops():
    ds = SkimagePhotos(size=32, length=20)
    assert len(ds) == 20
    ex = ds[3]
    assert set(ex) == {"image", "file_path_", "class_label"}
    assert ex["image"].shape == (32, 32, 3) and ex["image"].dtype == np.float32
    assert -1 <= ex["image"].min() and ex["image"].max() <= 1
    assert ex["class_label"] == 3 % len(SKIMAGE_PHOTOS)
    crops = {ds[0]["image"].tobytes() for _ in range(5)}
    assert len(crops) > 1  # random crops
    batch = next(iter(DataLoader(ds, batch_size=8, shuffle=True, collate_fn=custom_collate)))
    assert (
        tuple(batch["image"].shape) == (8, 32, 32, 3) and batch["class_label"].dtype == torch.long
    )


def test_validation_is_fixed():
    ds = SkimagePhotos(size=32, split="validation")
    assert len(ds) == len(SKIMAGE_PHOTOS)
    np.testing.assert_array_equal(ds[2]["image"], ds[2]["image"])
    zoomed = SkimagePhotos(size=32, split="validation", length=2 * len(SKIMAGE_PHOTOS))
    np.testing.assert_array_equal(zoomed[0]["image"], ds[0]["image"])
    assert not np.array_equal(zoomed[len(SKIMAGE_PHOTOS)]["image"], ds[0]["image"])


def test_config_and_errors():
    cfg = {
        "target": "taming.data.demo.SkimagePhotos",
        "params": {"size": 16, "split": "train", "photos": ["astronaut", "coffee"]},
    }
    ds = instantiate_from_config(cfg)
    assert len(ds.images) == 2 and ds[1]["file_path_"].endswith("coffee.png")
    with pytest.raises(ValueError, match="unknown photo 'lena'"):
        SkimagePhotos(photos=["lena"])
    with pytest.raises(ValueError, match="split"):
        SkimagePhotos(split="test")


def test_missing_scikit_image_says_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "skimage", None)
    monkeypatch.setitem(sys.modules, "skimage.data", None)
    with pytest.raises(ImportError, match="pip install scikit-image"):
        SkimagePhotos()
