"""The original's datasets on tiny trees in their layouts (faces, ADE20K, COCO-Stuff, Open Images,
COCO scenes, custom lists): keys, dtypes, shapes, ranges, joint crops, order, bad input.

Trees are built from ../shared/data by `tests/data_trees.py` (skipped without it); the value-for-
value comparison with the original code is `scripts/parity_data.py` (not a default test).
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import data_trees
from taming.cli import main
from taming.config import instantiate_from_config, load_config
from taming.data.helper_types import Annotation
from taming.data.segmentation import SegmentationBase


@pytest.fixture(scope="module")
def tree(shared_dir: Path, tmp_path_factory) -> Path:
    data = shared_dir / "data"
    if not (data / "coco_examples.txt").is_file():
        pytest.skip(f"original sample data not found in {data}")
    root = tmp_path_factory.mktemp("tree")
    data_trees.build_all(data, root)
    return root


@pytest.fixture()
def in_tree(tree: Path, monkeypatch) -> Path:
    monkeypatch.chdir(tree)  # the original's data/... paths are CWD-relative
    monkeypatch.setenv("XDG_CACHE_HOME", str(tree / "xdg"))
    return tree


def _image_ok(x, size: int) -> None:
    x = np.asarray(x)
    assert x.shape == (size, size, 3) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0


def test_faces(in_tree: Path):
    from taming.data.faceshq import (
        CelebAHQValidation,
        FacesHQTrain,
        FacesHQValidation,
        FFHQTrain,
        face_names,
    )

    ffhq = FFHQTrain(size=32)
    assert len(ffhq) == 3 and ffhq[0]["file_path_"] == "data/ffhq/00000.png"
    _image_ok(ffhq[0]["image"], 32)
    celeba = CelebAHQValidation(size=32, keys=["image"])
    assert list(celeba[0]) == ["image"]
    # NumpyPaths reads the (1, 3, H, W) array: full size equals the PNG of the same face
    full = CelebAHQValidation(size=None)[0]["image"]
    raw = np.load(in_tree / "data/celebahq/imgHQ00003.npy")[0].transpose(1, 2, 0)
    np.testing.assert_allclose(full, raw / 127.5 - 1.0, atol=1e-6)
    val = FacesHQValidation(size=40, crop_size=32, coord=True)
    assert len(val) == 6
    ex = val[0]
    _image_ok(ex["image"], 32)
    assert ex["class"] == 0 and val[5]["class"] == 1
    coord = ex["coord"]
    assert coord.shape == (32, 32, 1) and coord.dtype == np.float64
    top = left = (40 - 32) // 2  # center crop of the 40x40 coordinate map
    assert coord[0, 0, 0] == pytest.approx((top * 40 + left) / 1600)
    assert coord[1, 0, 0] - coord[0, 0, 0] == pytest.approx(40 / 1600)
    train = FacesHQTrain(size=40, crop_size=32, coord=True)
    c = train[2]["coord"][:, :, 0] * 1600
    assert np.allclose(np.diff(c, axis=1), 1) and np.allclose(np.diff(c, axis=0), 40)
    names = face_names("ffhq", "validation")
    assert (len(names), names[0], names[-1]) == (10_000, "60000.png", "69999.png")
    assert len(face_names("celebahq", "train")) == 25_000


def test_ade20k_full_layout(in_tree: Path):
    from taming.data.ade20k import ADE20kTrain, ADE20kValidation

    val = ADE20kValidation(size=64)  # the original failed here without crop_size
    assert len(val) == 10
    ex = val[0]
    _image_ok(ex["image"], 64)
    seg = ex["segmentation"]
    assert seg.shape == (64, 64, 151) and seg.dtype == np.float64
    np.testing.assert_array_equal(seg.sum(-1), 1.0)
    assert ex["scene_category"] in {"bedroom", "street", "kitchen"}
    assert ex["relative_segmentation_path_"] == ex["relative_file_path_"].replace(".jpg", ".png")
    train = ADE20kTrain(size=80, crop_size=64)
    assert train.random_crop and train[3]["segmentation"].shape == (64, 64, 151)


def test_coco_stuff_with_captions(in_tree: Path):
    from taming.data.coco import CocoImagesAndCaptionsTrain, CocoImagesAndCaptionsValidation

    val = CocoImagesAndCaptionsValidation(
        size=64, crop_size=64, onehot_segmentation=True, use_stuffthing=True
    )
    assert len(val) == 10
    ex = val[0]
    _image_ok(ex["image"], 64)
    seg = ex["segmentation"]
    assert seg.shape == (64, 64, 183) and seg.dtype == np.int64  # as the original
    np.testing.assert_array_equal(seg.sum(-1), 1)
    name = ex["filename_"]
    assert isinstance(ex["caption"], list) and ex["caption"][0] in {f"c0 {name}", f"c1 {name}"}
    assert ex["img_path"] == f"data/coco/val2017/{name}"
    # shift: raw 255 (unlabeled) becomes class 0, raw k becomes k + 1 (scale 1: crop only)
    raw = np.asarray(Image.open(in_tree / ex["seg_path"])).astype(int)
    h, w = raw.shape
    m = min(h, w)
    full = CocoImagesAndCaptionsValidation(size=m, onehot_segmentation=True, use_stuffthing=True)[0]
    top, left = (h - m) // 2, (w - m) // 2
    expected = (raw[top : top + m, left : left + m] + 1) % 256
    np.testing.assert_array_equal(full["segmentation"].argmax(-1), expected)
    train = CocoImagesAndCaptionsTrain(
        size=80, crop_size=64, onehot_segmentation=True, use_stuffthing=True
    )
    assert train[1]["segmentation"].shape == (64, 64, 183)
    rgb = CocoImagesAndCaptionsValidation(size=48, force_no_crop=True)[0]["segmentation"]
    assert rgb.shape == (48, 48, 3) and rgb.dtype == np.float32
    with pytest.raises(ValueError, match="use_stuffthing"):
        CocoImagesAndCaptionsValidation(size=64, onehot_segmentation=True)


def test_original_coco_cond_stage_yaml_resolves(in_tree: Path, legacy_configs: Path):
    cfg = load_config(
        legacy_configs / "coco_cond_stage.yaml",
        ["data.params.validation.params.size=64", "data.params.validation.params.crop_size=64"],
    )
    ds = instantiate_from_config(cfg.data.params.validation)
    assert ds[0]["segmentation"].shape == (64, 64, 183)


def test_segmentation_image_and_labels_get_the_same_crop(tmp_path: Path):
    """Labels drawn from the image itself must survive resize, random crop (and flip) unchanged."""
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 20, (9, 13)).repeat(6, 0).repeat(6, 1).astype(np.uint8)  # (54, 78)
    image = np.stack([labels * 10, labels * 5, 255 - labels * 10], axis=-1).astype(np.uint8)
    (tmp_path / "img").mkdir()
    (tmp_path / "seg").mkdir()
    for k in range(3):
        Image.fromarray(image).save(tmp_path / "img" / f"{k}.png")
        Image.fromarray(labels).save(tmp_path / "seg" / f"{k}.png")
    (tmp_path / "list.txt").write_text("0.jpg\n1.jpg\n2.jpg\n")
    for k in range(3):  # the list names .jpg; the label map replaces .jpg by .png
        (tmp_path / "img" / f"{k}.png").rename(tmp_path / "img" / f"{k}.jpg")
    ds = SegmentationBase(
        str(tmp_path / "list.txt"),
        str(tmp_path / "img"),
        str(tmp_path / "seg"),
        size=40,
        random_crop=True,
        interpolation="nearest",
        n_labels=20,
    )
    random.seed(3)
    for i in range(3):
        ex = ds[i]
        red = np.rint((ex["image"][:, :, 0] + 1) * 127.5) / 10
        np.testing.assert_array_equal(red, ex["segmentation"].argmax(-1))
    # depth and image share resize, crop and flip (BaseWithDepth's preprocessor)
    from taming.data.imagenet_depth import get_preprocessor

    pre = get_preprocessor(size=32, random_crop=True, additional_targets={"depth": "image"})
    img = rng.uniform(-1, 1, (50, 70, 3)).astype(np.float32)
    results = []
    for seed in range(8):
        random.seed(seed)
        out = pre(image=img, depth=img[:, :, 0].copy())
        np.testing.assert_allclose(out["depth"], out["image"][:, :, 0], atol=1e-6)
        results.append(out["image"])
    assert len({r.tobytes() for r in results}) > 1  # crops/flips do vary


def test_open_images_layout_and_category_unification(in_tree: Path, legacy_configs: Path):
    cfg = load_config(
        legacy_configs / "open_images_scene_images_transformer.yaml",
        ["data.params.train.params.target_image_size=64"],
    )
    ds = instantiate_from_config(cfg.data.params.train)
    from taming.data.open_images_helper import top_300_classes_plus_coco_compatibility as allow

    allowed = {n for n, _ in allow}
    mapped = {"/m/03bt1vf", "/m/04yx4", "/m/0cnyhnx"}  # Woman, Man, Bull: unified away
    kept = sorted(i for i, n in data_trees.OPEN_IMAGES_CLASSES if n in allowed and i not in mapped)
    kept.remove("/m/01s55n")
    assert ds.category_ids == [*kept, "/m/01s55n"]  # string order, Suitcase forced last
    names = [ds.get_textual_label_for_category_no(i) for i in range(ds.no_classes)]
    assert "Woman" not in names and "Not an allowed class" not in names
    ex = ds[0]
    _image_ok(ex["image"], 64)
    assert ex["objects_bbox"].dtype == torch.int64 and ex["objects_bbox"].shape == (92,)
    assert all(isinstance(a, Annotation) for a in ex["annotations"])
    person = ds.get_category_number("/m/01g317")
    # every Woman / Man box was mapped to Person
    rows = in_tree / "data/open_images_annotations_100/oidv6-train-annotations-bbox.csv"
    text = rows.read_text()
    if "/m/03bt1vf" in text:
        ids = {a.category_id for i in range(len(ds)) for a in ds.annotations[ds.image_ids[i]]}
        assert "/m/03bt1vf" not in ids and "/m/04yx4" not in ids
    assert person == ds.category_number["/m/01g317"]
    # images in the order of their first annotation row (after the filters)
    first_rows = []
    for line in text.splitlines()[1:]:
        iid = line.split(",")[0]
        if iid not in first_rows:
            first_rows.append(iid)
    assert ds.image_ids == [i for i in first_rows if i in ds.image_ids]
    assert ex["file_name"] == f"{ds.image_ids[0]:0>16}.jpg"


def test_coco_scene_item_order_is_the_originals(in_tree: Path):
    from taming.data.annotated_objects_coco import AnnotatedObjectsCoco

    ds = AnnotatedObjectsCoco(
        data_path="data/coco_annotations_100", split="validation", target_image_size=32
    )
    inst = json.loads(
        (in_tree / "data/coco_annotations_100/annotations/instances_val2017.json").read_text()
    )
    first_seen = list(dict.fromkeys(a["image_id"] for a in inst["annotations"]))
    assert ds.image_ids[0] == [i for i in first_seen if i in ds.image_ids][0]
    names = {img["id"]: img["file_name"] for img in inst["images"]}
    assert ds[0]["file_name"] == names[ds.image_ids[0]]


def test_custom_test_keeps_the_lists_paths(in_tree: Path):
    from taming.data.custom import CustomTest

    (in_tree / "rel.txt").write_text("data/coco_images/000000000285.jpg\n\n")
    if not (in_tree / "data/coco_images/000000000285.jpg").exists():
        name = sorted((in_tree / "data/coco_images").iterdir())[0].name
        (in_tree / "rel.txt").write_text(f"data/coco_images/{name}\n")
    ds = CustomTest(size=32, test_images_list_file="rel.txt")
    assert len(ds) == 1 and not ds[0]["file_path_"].startswith("/")
    assert ds[0]["file_path_"] == (in_tree / "rel.txt").read_text().split()[0]


def test_bad_inputs_are_named(tmp_path: Path):
    (tmp_path / "img").mkdir()
    (tmp_path / "seg").mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img" / "a.jpg")
    Image.fromarray(np.zeros((6, 8), np.uint8)).save(tmp_path / "seg" / "a.png")  # wrong size
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img" / "b.jpg")  # no map
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "img" / "c.jpg")
    Image.fromarray(np.full((8, 8), 3, np.uint8)).save(tmp_path / "seg" / "c.png")
    (tmp_path / "list.txt").write_text("a.jpg\nb.jpg\nc.jpg\n")
    ds = SegmentationBase(
        str(tmp_path / "list.txt"), str(tmp_path / "img"), str(tmp_path / "seg"), n_labels=4
    )
    assert ds[0]["relative_file_path_"] == "c.jpg" and ds.num_skipped == 2  # counted skips
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(ValueError, match="empty"):
        SegmentationBase(str(tmp_path / "empty.txt"), "img", "seg")
    from taming.data.ade20k import ADE20kValidation

    with pytest.raises(FileNotFoundError, match="ADEChallengeData2016"):
        ADE20kValidation(root=str(tmp_path))


def test_taming_data_check_and_lists(shared_dir: Path, tmp_path: Path, capsys):
    images = shared_dir / "data" / "ade20k_images"
    if not images.is_dir():
        pytest.skip("original sample data not found")
    grid = tmp_path / "grid.png"
    assert main(["data", "check", str(images), "--dataset", "ade20k", "--grid", str(grid)]) == 0
    out = capsys.readouterr().out
    assert "30 items" in out and "30 readable, 0 unreadable" in out
    assert "labels: 0.." in out and "(n_labels 151)" in out
    assert Image.open(grid).size[0] > 128
    assert main(["data", "lists", str(images), "--out", str(tmp_path), "--seed", "1"]) == 0
    train = (tmp_path / "train.txt").read_text().split()
    val = (tmp_path / "validation.txt").read_text().split()
    assert (len(train), len(val)) == (27, 3) and not set(train) & set(val)
    assert main(["data", "lists", str(images), "--out", str(tmp_path)]) == 2  # no overwrite
    assert (
        main(["data", "lists", str(images), "--out", str(tmp_path), "--seed", "1", "--force"]) == 0
    )
    assert (tmp_path / "validation.txt").read_text().split() == val  # seeded
