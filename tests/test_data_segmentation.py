"""Segmentation examples (S-FLCKR, ADE20K, COCO-Stuff) and D-RIN depth examples.

The example tests use the original project's shipped `data/` (../shared/data) and skip
without it; the format tests build their own files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from torch.utils.data import DataLoader

from taming.config import instantiate_from_config, load_config
from taming.data import ade20k, coco, sflckr
from taming.data.imagenet import DRINExamples, ImageNetTrain, load_depth, rgba_to_depth
from taming.data.segmentation import SegmentationBase
from taming.data.utils import custom_collate


@pytest.fixture(scope="module")
def data_root(shared_dir: Path) -> Path:
    root = shared_dir / "data"
    if not (root / "sflckr_examples.txt").is_file():
        pytest.skip(f"original sample data not found in {root}")
    return root


EXAMPLES = [
    pytest.param(sflckr.Examples, 25, 182, id="sflckr"),
    pytest.param(ade20k.Examples, 30, 151, id="ade20k"),
    pytest.param(coco.Examples, 35, 183, id="coco"),
]


def _check(example: dict, size: int, n_labels: int) -> None:
    image, seg = example["image"], example["segmentation"]
    assert image.shape == (size, size, 3) and image.dtype == np.float32
    assert -1.0 <= image.min() and image.max() <= 1.0
    assert seg.shape == (size, size, n_labels) and seg.dtype == np.float64  # as np.eye
    np.testing.assert_array_equal(seg.sum(-1), 1.0)  # one-hot
    assert set(np.unique(seg)) <= {0.0, 1.0}
    assert example["segmentation_path_"].endswith(".png")


@pytest.mark.parametrize("cls,length,n_labels", EXAMPLES)
def test_segmentation_examples(data_root: Path, cls, length: int, n_labels: int):
    ds = cls(size=128, root=str(data_root))
    assert len(ds) == length
    for i in (0, length - 1):
        _check(ds[i], 128, n_labels)
    batch = next(iter(DataLoader(ds, batch_size=2, collate_fn=custom_collate)))
    assert tuple(batch["segmentation"].shape) == (2, 128, 128, n_labels)
    assert len(batch["file_path_"]) == 2
    ds = cls(size=96, random_crop=True, interpolation="bilinear", root=str(data_root))
    _check(ds[1], 96, n_labels)
    assert ds.num_skipped == 0


def test_coco_examples_shift_unlabeled_to_zero(data_root: Path):
    ds = coco.Examples(size=None, root=str(data_root))
    raw = np.array(Image.open(ds.labels["segmentation_path_"][0]))
    ex = ds[0]
    labels = ex["segmentation"].argmax(-1)
    np.testing.assert_array_equal(labels, (raw.astype(np.int64) + 1) % 256)
    assert ex["image"].shape[:2] == raw.shape  # size None keeps the resolution


def test_original_sflckr_yaml_with_cwd_relative_data(data_root: Path, shared_dir, monkeypatch):
    cfg = load_config(shared_dir / "original_configs" / "sflckr_cond_stage.yaml")
    monkeypatch.chdir(data_root.parent)  # the original resolves data/... from the CWD
    ds = instantiate_from_config(cfg.data.params.validation)
    _check(ds[0], 256, 182)


def test_drin_examples(data_root: Path):
    ds = DRINExamples(root=str(data_root))
    assert len(ds) == 25
    ex = ds[0]
    assert set(ex) == {"image", "depth"}
    assert ex["image"].shape == (256, 256, 3) and ex["image"].dtype == np.float32
    assert ex["depth"].shape == (256, 256) and ex["depth"].dtype == np.float32
    assert -1.0 <= ex["depth"].min() < -0.5 and 0.5 < ex["depth"].max() <= 1.0
    batch = next(iter(DataLoader(DRINExamples(size=64, root=str(data_root)), batch_size=3)))
    assert tuple(batch["depth"].shape) == (3, 64, 64)


# -- formats on synthetic files -----------------------------------------------------------


def test_depth_png_round_trip(tmp_path: Path):
    depth = np.linspace(2.0, 10.0, 6 * 5, dtype=np.float32).reshape(6, 5)
    rgba = depth.astype("<f4").view(np.uint8).reshape(6, 5, 4)
    np.testing.assert_array_equal(rgba_to_depth(rgba), depth)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "d.png")
    loaded = load_depth(str(tmp_path / "d.png"))
    np.testing.assert_allclose(loaded, (depth - 2.0) / 8.0 * 2 - 1, atol=1e-6)
    flat = np.full((4, 4), 3.0, np.float32).view(np.uint8).reshape(4, 4, 4)
    Image.fromarray(flat, "RGBA").save(tmp_path / "flat.png")
    assert (load_depth(str(tmp_path / "flat.png")) == -1.0).all()  # constant: guarded range


def _pair(root: Path, name: str, size=(12, 10), labels: int = 3) -> None:
    (root / "img").mkdir(exist_ok=True)
    (root / "seg").mkdir(exist_ok=True)
    Image.fromarray(np.zeros((size[1], size[0], 3), np.uint8)).save(root / "img" / f"{name}.jpg")
    seg = (np.arange(size[0] * size[1]) % labels).reshape(size[1], size[0]).astype(np.uint8)
    Image.fromarray(seg, "L").save(root / "seg" / f"{name}.png")


def test_segmentation_base_skips_broken_pairs(tmp_path: Path):
    _pair(tmp_path, "ok")
    _pair(tmp_path, "mismatch")
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "seg" / "mismatch.png")
    _pair(tmp_path, "noseg")
    (tmp_path / "seg" / "noseg.png").unlink()
    (tmp_path / "list.txt").write_text("mismatch.jpg\nnoseg.jpg\nok.jpg\n")
    ds = SegmentationBase(
        data_csv=str(tmp_path / "list.txt"),
        data_root=str(tmp_path / "img"),
        segmentation_root=str(tmp_path / "seg"),
        size=8,
        n_labels=3,
    )
    for i in range(3):
        ex = ds[i]
        assert ex["relative_file_path_"] == "ok.jpg"
        assert ex["segmentation"].shape == (8, 8, 3)
    assert ds.num_skipped == 2


def test_segmentation_label_out_of_range_is_a_config_error(tmp_path: Path):
    _pair(tmp_path, "a", labels=5)
    (tmp_path / "list.txt").write_text("a.jpg\n")
    ds = SegmentationBase(
        str(tmp_path / "list.txt"), str(tmp_path / "img"), str(tmp_path / "seg"), n_labels=3
    )
    with pytest.raises(ValueError, match="label 4 >= n_labels=3"):
        ds[0]


def test_missing_imagenet_says_what_to_place_where(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="place ILSVRC2012_img_train.tar") as e:
        ImageNetTrain(config={"size": 256})
    assert str(tmp_path / "autoencoders/data/ILSVRC2012_train") in str(e.value)
