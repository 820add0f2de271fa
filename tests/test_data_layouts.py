"""Scene layouts: conditional builders (tokens <-> boxes), AnnotatedObjectsCoco, custom_collate."""

from __future__ import annotations

import random
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from taming.config import instantiate_from_config, load_config
from taming.data.conditional_builder import utils as builder_utils
from taming.data.conditional_builder.objects_bbox import ObjectsBoundingBoxConditionalBuilder
from taming.data.conditional_builder.objects_center_points import (
    ObjectsCenterPointsConditionalBuilder,
)
from taming.data.helper_types import Annotation
from taming.data.utils import custom_collate

N_CLASSES, N_TOKENS, N_OBJECTS = 171, 8192, 30
STEP = 1 / (int(N_TOKENS**0.5) - 1)  # one grid cell (1/89)


def _annotations(n: int, seed: int = 0) -> list[Annotation]:
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        x0, y0 = rng.uniform(0, 0.7, 2)
        w, h = rng.uniform(0.05, 0.3, 2)
        out.append(
            Annotation(
                area=w * h,
                image_id=1,
                bbox=(x0, y0, w, h),
                category_no=int(rng.integers(0, N_CLASSES)),
                category_id=str(i),
                is_group_of=bool(i % 5 == 0),
            )
        )
    return out


def _bbox_builder(encode_crop: bool = True, rng=None) -> ObjectsBoundingBoxConditionalBuilder:
    return ObjectsBoundingBoxConditionalBuilder(
        N_CLASSES, N_OBJECTS, N_TOKENS, encode_crop, True, False, rng=rng
    )


def _as_key(representation: int, box) -> tuple:
    return (representation, *(round(v / STEP) for v in box))


def test_bbox_build_has_92_tokens_and_round_trips():
    builder = _bbox_builder()
    anns = _annotations(N_OBJECTS)
    tokens = builder.build(anns, crop_coordinates=(0.1, 0.0, 0.8, 1.0))
    assert tokens.dtype == torch.long and tokens.shape == (92,)
    assert builder.embedding_dim == 92 and int(tokens.max()) < N_TOKENS
    objects, crop = builder.inverse_build(tokens)
    assert len(objects) == N_OBJECTS
    np.testing.assert_allclose(crop, (0.1, 0.0, 0.8, 1.0), atol=STEP)
    expected = Counter(builder.object_representation(a) for a in anns)
    assert Counter(r for r, _ in objects) == expected
    for representation, box in objects:  # every decoded box matches one input box
        candidates = [a for a in anns if builder.object_representation(a) == representation]
        err = min(max(abs(b - c) for b, c in zip(box, a.bbox)) for a in candidates)
        assert err <= STEP
    assert builder.inverse_build(tokens.numpy()) == builder.inverse_build(tokens.tolist())
    decoded = builder.representation_to_annotation(objects[0][0])
    assert decoded.category_no == objects[0][0] % N_CLASSES


def test_group_flag_and_padding():
    builder = _bbox_builder()
    anns = _annotations(3)
    tokens = builder.build(anns).tolist()
    assert tokens[9:90] == [builder.none] * 81  # 27 padded triples
    assert tokens[-2:] == [0, N_TOKENS - 1 - (N_TOKENS - 90 * 90)]  # full crop: (0,0) (1,1)
    group = [a for a in anns if a.is_group_of][0]
    assert builder.object_representation(group) == group.category_no + N_CLASSES
    assert builder.representation_to_annotation(group.category_no + N_CLASSES).is_group_of


def test_shuffle_uses_global_random_by_default_and_rng_when_given():
    anns = _annotations(10)
    builder = _bbox_builder()
    random.seed(3)
    a = builder.build(list(anns))
    random.seed(3)
    assert torch.equal(a, builder.build(list(anns)))
    seeded = [_bbox_builder(rng=7).build(list(anns)) for _ in range(2)]
    assert torch.equal(seeded[0], seeded[1])
    shared = _bbox_builder(rng=random.Random(7))
    assert torch.equal(shared.build(list(anns)), seeded[0])
    # as the original, a list passed in is shuffled in place (datasets pass a copy, and return
    # it as `annotations`); other sequences are copied
    passed = list(anns)
    random.seed(3)
    builder.build(passed)
    random.seed(3)
    expected = list(anns)
    random.shuffle(expected)
    assert passed == expected
    as_tuple = tuple(anns)
    builder.build(as_tuple)
    assert list(as_tuple) == anns


def test_flip_and_crop_relative_boxes():
    ann = [Annotation(0.02, 1, (0.1, 0.2, 0.2, 0.1), 5, "5")]
    flipped = _bbox_builder(rng=0).build(ann, horizontal_flip=True)
    ((_, box),) = _bbox_builder().inverse_build(flipped)[0]
    np.testing.assert_allclose(box, (0.7, 0.2, 0.2, 0.1), atol=STEP)
    relative = _bbox_builder(encode_crop=False, rng=0)
    tokens = relative.build(ann, crop_coordinates=(0.0, 0.0, 0.5, 0.5))
    assert tokens.shape == (90,)
    objects, crop = relative.inverse_build(tokens)
    assert crop is None
    np.testing.assert_allclose(objects[0][1], (0.2, 0.4, 0.4, 0.2), atol=STEP)
    outside = relative.build(ann, crop_coordinates=(0.5, 0.5, 0.5, 0.5))
    assert relative.inverse_build(outside)[0] == []  # objects outside the crop are dropped


def test_center_points_builder():
    builder = ObjectsCenterPointsConditionalBuilder(
        N_CLASSES, N_OBJECTS, N_TOKENS, True, True, False
    )
    anns = _annotations(N_OBJECTS)
    tokens = builder.build(anns)
    assert tokens.shape == (62,) and builder.embedding_dim == 62
    objects, crop = builder.inverse_build(tokens)
    centers = {
        _as_key(
            builder.object_representation(a), (a.bbox[0] + a.bbox[2] / 2, a.bbox[1] + a.bbox[3] / 2)
        )
        for a in anns
    }
    assert {_as_key(r, xy) for r, xy in objects} == centers
    np.testing.assert_allclose(crop, (0, 0, 1, 1))


@pytest.mark.parametrize(
    "builder_cls", [ObjectsBoundingBoxConditionalBuilder, ObjectsCenterPointsConditionalBuilder]
)
def test_plot_returns_image(builder_cls, monkeypatch):
    builder = builder_cls(N_CLASSES, N_OBJECTS, N_TOKENS, True, True, False)
    tokens = builder.build(_annotations(5), crop_coordinates=(0.1, 0.1, 0.8, 0.8))
    img = builder.plot(tokens, lambda no: f"class {no}", (128, 96))
    assert img.shape == (3, 96, 128) and img.dtype == torch.float32
    assert img.min() >= -1 and img.max() <= 1 and (img < 1).any()
    monkeypatch.setattr(builder_utils, "FONT_CANDIDATES", ("/no/such/font.ttf",))
    builder_utils.load_font.cache_clear()
    try:
        fallback = builder.plot(tokens, lambda no: f"class {no}", (64, 64))
    finally:
        builder_utils.load_font.cache_clear()
    assert fallback.shape == (3, 64, 64)


# -- custom_collate -----------------------------------------------------------------------------


def test_custom_collate():
    anns = _annotations(3)
    batch = [
        {
            "image": np.zeros((4, 4, 3), np.float32),
            "annotations": anns,
            "name": "a",
            "x": 1.5,
            "n": np.int64(2),
            "box": (0.0, 0.5),
        },
        {
            "image": np.ones((4, 4, 3), np.float32),
            "annotations": [],
            "name": "b",
            "x": 2.5,
            "n": np.int64(3),
            "box": (0.1, 0.6),
        },
    ]
    out = custom_collate(batch)
    assert out["image"].shape == (2, 4, 4, 3)
    assert out["annotations"] == [anns, []]  # lists of annotations kept as they are
    assert out["name"] == ["a", "b"]
    assert out["x"].dtype == torch.float64 and out["n"].tolist() == [2, 3]
    assert len(out["box"]) == 2 and out["box"][1].tolist() == [0.5, 0.6]
    empty = custom_collate([{"annotations": []}, {"annotations": []}])
    assert empty["annotations"] == [[], []]


# -- AnnotatedObjectsCoco on the shipped 100-image COCO subset -----------------------------


@pytest.fixture(scope="module")
def coco_config(shared_dir: Path):
    data = shared_dir / "data" / "coco_annotations_100"
    if not (data / "annotations" / "instances_train2017.json").is_file():
        pytest.skip(f"COCO sample annotations not found in {data}")
    cfg = load_config(
        shared_dir / "original_configs" / "coco_scene_images_transformer.yaml",
        [f"data.params.{s}.params.data_path={data}" for s in ("train", "validation")],
    )
    return cfg.data.params


@pytest.fixture(scope="module")
def coco_train(coco_config):
    return instantiate_from_config(coco_config.train)


def test_annotated_objects_coco(coco_train, coco_config):
    ds = coco_train
    assert len(ds) > 50 and ds.no_classes == 171
    assert ds.category_ids[:4] == ["1", "10", "100", "101"]  # sorted as strings
    assert "other" not in {c.name for c in ds.categories.values()}
    assert ds.get_textual_label_for_category_no(0) == "person"
    assert all(2 <= len(ds.annotations[i]) <= 30 for i in ds.image_ids)
    ex = ds[0]
    assert set(ex) == {"image", "objects_bbox", "file_name", "annotations"}
    assert ex["image"].shape == (256, 256, 3) and ex["image"].dtype == np.float32
    assert -1 <= ex["image"].min() and ex["image"].max() <= 1
    assert ex["objects_bbox"].shape == (92,) and ex["objects_bbox"].dtype == torch.long
    assert isinstance(ex["annotations"][0], Annotation) and ex["file_name"].endswith(".jpg")
    batch = next(iter(DataLoader(ds, batch_size=4, shuffle=True, collate_fn=custom_collate)))
    assert tuple(batch["objects_bbox"].shape) == (4, 92)
    assert tuple(batch["image"].shape) == (4, 256, 256, 3)
    assert len(batch["annotations"]) == 4 and isinstance(batch["annotations"][0], list)
    val = instantiate_from_config(coco_config.validation)
    assert len(val) > 50
    objects, crop = val.conditional_builders["objects_bbox"].inverse_build(val[0]["objects_bbox"])
    assert crop[1] == 0.0 or crop[0] == 0.0  # a centered square crop touches two edges
    assert 0 < len(objects) <= len(val[0]["annotations"])


@pytest.mark.parametrize("crop_method", ["none", "random-1d", "random-2d"])
def test_annotated_objects_crop_methods(coco_config, crop_method):
    params = {**coco_config.train.params, "crop_method": crop_method, "target_image_size": 64}
    params["keys"] = ["image", "objects_center_points", "crop_bbox", "flipped", "annotations"]
    ds = instantiate_from_config({"target": coco_config.train.target, "params": params})
    builder = ds.conditional_builders["objects_center_points"]
    for i in range(3):
        ex = ds[i]
        assert ex["image"].shape == (64, 64, 3)
        assert ex["objects_center_points"].shape == (62,)
        objects, _ = builder.inverse_build(ex["objects_center_points"])
        if crop_method == "none":
            assert ex["crop_bbox"] is None  # as the original: no crop, the full image
        crop = ex["crop_bbox"] or (0.0, 0.0, 1.0, 1.0)
        inside = builder_utils.filter_annotations(ex["annotations"], crop)
        assert len(objects) == len(inside) > 0  # objects outside the crop are dropped
        x0, y0, w, h = crop
        assert 0 <= x0 and 0 <= y0 and x0 + w <= 1 + 1e-9 and y0 + h <= 1 + 1e-9


def test_annotated_objects_errors(coco_config, tmp_path: Path):
    params = dict(coco_config.train.params)
    with pytest.raises(FileNotFoundError, match="nowhere"):
        instantiate_from_config(
            {
                "target": coco_config.train.target,
                "params": {**params, "data_path": str(tmp_path / "nowhere")},
            }
        )
    with pytest.raises(ValueError, match="unknown key 'pixels'"):
        instantiate_from_config(
            {"target": coco_config.train.target, "params": {**params, "keys": ["pixels"]}}
        )
