"""Open a dataset folder by name and check it: counts, unreadable files, label ranges, splits.

Used by `taming data check|lists`. `open_dataset(root, name)` knows these layouts:

| name | ROOT |
|---|---|
| `imagenet` | a split folder `.../ILSVRC2012_{train,validation}` (prepared if needed) |
| `ffhq`, `celebahq`, `folder` | a folder of `.png` / `.npy` / any images |
| `ade20k` | `ADEChallengeData2016/` (`images/`, `annotations/`, `sceneCategories.txt`) or the
  examples' `ade20k_images/` next to `ade20k_segmentations/` |
| `coco`, `sflckr` | `<name>_images/` next to `<name>_segmentations/` (the shipped examples) |
| `coco_stuff` | the folder holding the original's `data/coco`, `data/cocostuffthings` |
| `drin` | the original's `data/` (drin_examples.txt, drin_images/, drin_depth/) |
| `coco_scene`, `open_images` | the annotated-objects folders of the scene configs |

`check(dataset)` loads every item (or `limit`), counting unreadable files (with their paths)
and, for label maps, the range and the classes present; labels out of range are counted per
file instead of stopping the check.
"""

from __future__ import annotations

import logging
import os
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from taming.data.io import BadImageError

if TYPE_CHECKING:  # torch loads only when a dataset is opened (the CLI builds its parser fast)
    from torch.utils.data import Dataset

logger = logging.getLogger(__name__)

__all__ = ["DATASETS", "CheckReport", "check", "make_lists", "open_dataset"]

N_LABELS = {"ade20k": 151, "coco": 183, "sflckr": 182}
SHIFT = {"coco": True}
DATASETS = (
    "imagenet",
    "ffhq",
    "celebahq",
    "folder",
    "ade20k",
    "coco",
    "sflckr",
    "coco_stuff",
    "drin",
    "coco_scene",
    "open_images",
)


def _examples_pair(root: str, name: str) -> Dataset:
    from taming.data.segmentation import SegmentationBase

    root = os.path.normpath(root)
    base = os.path.basename(root)
    if not base.endswith("_images"):
        raise FileNotFoundError(
            f"{root}: expected {name}_images/ next to {name}_segmentations/ "
            "(or ADEChallengeData2016/ for ade20k)"
        )
    seg_root = os.path.join(os.path.dirname(root), base[: -len("_images")] + "_segmentations")
    if not os.path.isdir(seg_root):
        raise FileNotFoundError(f"label maps not found: {seg_root} (expected next to {root})")
    rel = sorted(
        os.path.relpath(os.path.join(d, f), root)
        for d, _, files in os.walk(root)
        for f in files
        if f.lower().endswith(".jpg")
    )
    if not rel:
        raise FileNotFoundError(f"no .jpg images in {root}")
    listing = os.path.join(tempfile.mkdtemp(prefix="taming_check_"), "list.txt")
    with open(listing, "w", encoding="utf-8") as f:
        f.write("\n".join(rel) + "\n")
    return SegmentationBase(
        listing,
        root,
        seg_root,
        size=None,
        n_labels=N_LABELS[name],
        shift_segmentation=SHIFT.get(name, False),
    )


def open_dataset(root: str, name: str, split: str = "validation", size: int = 256) -> Dataset:
    """The dataset `name` at `root` (see the module docstring), cropped to `size` where sized.

    Raises:
        FileNotFoundError: `root` does not hold the expected layout (the message names it).
        ValueError: an unknown `name`.
    """
    if not os.path.exists(root):
        raise FileNotFoundError(f"dataset folder not found: {root}")
    if name == "imagenet":
        from taming.data.imagenet import ImageNetTrain, ImageNetValidation

        cls = ImageNetTrain if split == "train" else ImageNetValidation
        return cls({"root": root, "size": size, f"{cls.__name__}": {"random_crop": False}})
    if name in ("ffhq", "celebahq", "folder"):
        from taming.data.base import ImagePaths, NumpyPaths
        from taming.data.folder import IMAGE_EXTENSIONS

        exts = {"ffhq": (".png",), "celebahq": (".npy",)}.get(name, IMAGE_EXTENSIONS)
        paths = sorted(
            os.path.join(d, f)
            for d, _, files in os.walk(root, followlinks=True)
            for f in files
            if f.lower().endswith(exts)
        )
        if not paths:
            raise FileNotFoundError(f"no {'/'.join(exts[:3])} files in {root}")
        cls = NumpyPaths if name == "celebahq" else ImagePaths
        return cls(paths, size=size)
    if name == "ade20k" and os.path.isfile(os.path.join(root, "sceneCategories.txt")):
        from taming.data.ade20k import ADE20kTrain, ADE20kValidation

        cls = ADE20kTrain if split == "train" else ADE20kValidation
        return cls(size=size, crop_size=size, root=root, random_crop=False)
    if name in N_LABELS:
        return _examples_pair(root, name)
    if name == "coco_stuff":
        from taming.data.coco import CocoImagesAndCaptionsTrain, CocoImagesAndCaptionsValidation

        cls = CocoImagesAndCaptionsTrain if split == "train" else CocoImagesAndCaptionsValidation
        return cls(size=size, onehot_segmentation=True, use_stuffthing=True, root=root)
    if name == "drin":
        from taming.data.imagenet_depth import DRINExamples

        return DRINExamples(size=size, root=root)
    if name in ("coco_scene", "open_images"):
        keys = ["image", "objects_bbox", "file_name", "annotations"]
        kw: dict[str, Any] = {"data_path": root, "split": split, "keys": keys}
        kw["target_image_size"] = size
        if name == "coco_scene":
            from taming.data.annotated_objects_coco import AnnotatedObjectsCoco

            return AnnotatedObjectsCoco(**kw)
        from taming.data.annotated_objects_open_images import AnnotatedObjectsOpenImages

        helper = "taming.data.open_images_helper."
        return AnnotatedObjectsOpenImages(
            use_additional_parameters=True,
            category_allow_list_target=helper + "top_300_classes_plus_coco_compatibility",
            category_mapping_target=helper + "open_images_unify_categories_for_coco",
            min_object_area=0.0001,
            **kw,
        )
    raise ValueError(f"unknown dataset '{name}' (choose from {', '.join(DATASETS)})")


@dataclass
class CheckReport:
    """What `check` found."""

    length: int
    checked: int = 0
    unreadable: list[tuple[int, str]] = field(default_factory=list)
    label_errors: list[tuple[int, str]] = field(default_factory=list)
    labels: Counter = field(default_factory=Counter)
    n_labels: int | None = None
    samples: list[dict[str, Any]] = field(default_factory=list)

    @property
    def readable(self) -> int:
        return self.checked - len(self.unreadable) - len(self.label_errors)


def _loader(ds: Dataset):
    return getattr(ds, "_load_example", ds.__getitem__)


def check(ds: Dataset, limit: int | None = None, keep: int = 16) -> CheckReport:
    """Load items 0..limit-1 (all by default), counting problems; keep `keep` samples."""
    report = CheckReport(length=len(ds), n_labels=getattr(ds, "n_labels", None))
    load = _loader(ds)
    n = len(ds) if limit is None else min(limit, len(ds))
    for i in range(n):
        report.checked += 1
        try:
            ex = load(i)
        except BadImageError as e:
            report.unreadable.append((i, f"{e.path}: {e.reason}"))
            continue
        except ValueError as e:
            if "label" not in str(e):
                raise
            report.label_errors.append((i, str(e)))
            continue
        if isinstance(ex, tuple):
            ex = ex[0]
        seg = ex.get("segmentation")
        if seg is not None and np.asarray(seg).ndim == 3:
            labels = np.asarray(seg).argmax(-1)
            report.labels.update(np.unique(labels).tolist())
        if len(report.samples) < keep:
            report.samples.append(ex)
    return report


def make_lists(
    folder: str, val_fraction: float = 0.1, seed: int = 0
) -> tuple[list[str], list[str]]:
    """Seeded (train, validation) split of the images under `folder` (sorted, then shuffled).

    Raises:
        ValueError: no images, or a fraction outside (0, 1).
    """
    import random

    from taming.data.folder import find_images

    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"--val-fraction must be in (0, 1), got {val_fraction}")
    paths = find_images(folder)
    if len(paths) < 2:
        raise ValueError(f"{folder}: need at least 2 images to split, found {len(paths)}")
    order = list(paths)
    random.Random(seed).shuffle(order)
    n_val = min(len(order) - 1, max(1, round(len(order) * val_fraction)))
    return sorted(order[n_val:]), sorted(order[:n_val])
