"""Images with object annotations for scene-layout conditioning (`AnnotatedObjectsDataset`).

Shared part of `AnnotatedObjectsCoco` (and, later, Open Images): category bookkeeping, object
filtering, the image pipeline and the layout -> token builders.

- Categories: `filter_categories` keeps the names of an optional allow list and drops ids of
  an optional mapping; `setup_category_id_and_number` sorts the ids **as strings** (COCO:
  "1", "10", "100", ...) and moves Open Images' Suitcase (`/m/01s55n`) last; a category's
  number (its token) is its position. `no_classes = no_object_classes or len(categories)`.
- Objects: annotations with `area > min_object_area` are kept, then images with
  `min_objects_per_image <= count <= max_objects_per_image`.
- Images: in the order the original lists them (first appearance in the annotation files).
- Image pipeline, value for value as the original's torchvision transforms (>= 0.17) on the
  uint8 CHW tensor (`taming.data.transforms.scene_crop`, torch only): `crop_method` none /
  center / random-1d (alias random) / random-2d to `target_image_size` (antialiased bilinear),
  optional flip (`torch.rand(1) < 0.5`), `x / 127.5 - 1` -> float32 (S, S, 3) numpy (the
  original: a torch tensor, same values and layout). Images are read with
  `convert("RGB")` and without EXIF rotation, as the boxes refer to the stored pixel grid.
- Example: the image description fields (`id`, `file_name`, `original_size`, ...),
  `annotations` (list of `Annotation`, boxes relative to the full image), `image_path`,
  `image`, `crop_bbox` (x0, y0, w, h, None for crop_method none), `flipped` (None without
  `random_flip`), and `objects_bbox` / `objects_center_points` built from the annotations, the
  crop and the flip; only `keys` are returned. Unreadable images are skipped (the next example
  is returned, one warning per file).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any, Literal

import numpy as np
import torch
from torch.utils.data import Dataset

from taming.data.conditional_builder.objects_bbox import ObjectsBoundingBoxConditionalBuilder
from taming.data.conditional_builder.objects_center_points import (
    ObjectsCenterPointsConditionalBuilder,
)
from taming.data.conditional_builder.utils import load_object_from_string
from taming.data.helper_types import Annotation, Category, ImageDescription
from taming.data.io import BadFileTracker, load_image
from taming.data.transforms import CROP_METHODS, scene_crop

logger = logging.getLogger(__name__)

__all__ = ["AnnotatedObjectsDataset", "filter_object_number"]

SUITCASE_ID = "/m/01s55n"
BUILDER_KEYS = ("objects_bbox", "objects_center_points")
SAMPLE_KEYS = (
    *ImageDescription._fields,
    "file_path",
    "annotations",
    "image_path",
    "image",
    "crop_bbox",
    "flipped",
    *BUILDER_KEYS,
)
DEFAULT_KEYS = ["image", "objects_bbox", "file_name", "annotations"]


def filter_object_number(
    all_annotations: Mapping[Any, list[Annotation]],
    min_object_area: float,
    min_objects_per_image: int,
    max_objects_per_image: int,
) -> dict[Any, list[Annotation]]:
    """Keep objects with `area > min_object_area`, then images with min..max such objects."""
    filtered = {k: [a for a in v if a.area > min_object_area] for k, v in all_annotations.items()}
    return {
        k: v
        for k, v in filtered.items()
        if min_objects_per_image <= len(v) <= max_objects_per_image
    }


class AnnotatedObjectsDataset(Dataset):
    """Base class; subclasses load categories, image descriptions and annotations.

    Subclasses call, in order: `filter_categories`, `setup_category_id_and_number`, then
    `set_annotations(image_descriptions, annotations)` with `Annotation.category_no` taken
    from `self.category_number`.

    Args:
        data_path: dataset folder (absolute, or relative to the current directory).
        split: "train", "validation" or "test".
        keys: example keys to return (see the module docstring).
        target_image_size: side S of the square images.
        min_object_area: objects with a relative box area <= this are dropped.
        min_objects_per_image: images with fewer objects are dropped.
        max_objects_per_image: images with more objects are dropped; also the layout length.
        crop_method: "none", "center", "random-1d" (or "random") or "random-2d".
        random_flip: mirror image and layout with probability 0.5.
        no_tokens: layout vocabulary size (e.g. 8192).
        use_group_parameter: encode the group-of flag in category tokens.
        encode_crop: append the crop box to the layout (boxes stay in image coordinates).
        category_allow_list_target: dotted path of a list of (name, count) or names to keep.
        category_mapping_target: dotted path of a dict whose keys (category ids) are dropped.
        no_object_classes: number of category tokens (default: number of categories).
    """

    use_additional_parameters: bool = False

    def __init__(
        self,
        data_path: str,
        split: Literal["train", "validation", "test"],
        keys: list[str] | None = None,
        target_image_size: int = 256,
        min_object_area: float = 0.00001,
        min_objects_per_image: int = 2,
        max_objects_per_image: int = 30,
        crop_method: Literal["none", "center", "random", "random-1d", "random-2d"] = "center",
        random_flip: bool = False,
        no_tokens: int = 8192,
        use_group_parameter: bool = True,
        encode_crop: bool = True,
        category_allow_list_target: str = "",
        category_mapping_target: str = "",
        no_object_classes: int | None = None,
    ):
        if split not in ("train", "validation", "test"):
            raise ValueError(f"split must be train, validation or test, got '{split}'")
        if crop_method not in CROP_METHODS:
            raise ValueError(f"crop_method must be one of {CROP_METHODS}, got '{crop_method}'")
        keys = list(DEFAULT_KEYS if keys is None else keys)
        unknown = [k for k in keys if k not in SAMPLE_KEYS]
        if unknown:
            raise ValueError(f"unknown key '{unknown[0]}' (available: {', '.join(SAMPLE_KEYS)})")
        if min_objects_per_image > max_objects_per_image:
            raise ValueError("min_objects_per_image > max_objects_per_image")
        self.data_path = data_path
        self.split = split
        self.keys = keys
        self.target_image_size = target_image_size
        self.min_object_area = min_object_area
        self.min_objects_per_image = min_objects_per_image
        self.max_objects_per_image = max_objects_per_image
        self.crop_method = crop_method
        self.random_flip = random_flip
        self.no_tokens = no_tokens
        self.use_group_parameter = use_group_parameter
        self.encode_crop = encode_crop
        self.category_allow_list_target = category_allow_list_target
        self.category_mapping_target = category_mapping_target
        self.no_object_classes = no_object_classes
        if not os.path.isdir(data_path):
            raise FileNotFoundError(f"data_path not found: {os.path.abspath(data_path)}")
        self.categories: dict[str, Category] = {}
        self.category_ids: list[str] = []
        self.category_number: dict[str, int] = {}
        self.image_descriptions: dict[Any, ImageDescription] = {}
        self.annotations: dict[Any, list[Annotation]] = {}
        self.image_ids: list[Any] = []
        self.conditional_builders: dict[str, ObjectsCenterPointsConditionalBuilder] = {}
        self._tracker = BadFileTracker(0, name=type(self).__name__)

    # -- categories ----------------------------------------------------------------------

    def filter_categories(self, categories: Mapping[str, Category]) -> dict[str, Category]:
        """Apply the allow list (by name) and the mapping (drops its keys, by id)."""
        result = dict(categories)
        if self.category_allow_list_target:
            allow = load_object_from_string(self.category_allow_list_target)
            names = {a[0] if isinstance(a, tuple | list) else a for a in allow}
            result = {k: c for k, c in result.items() if c.name in names}
        if self.category_mapping_target:
            mapping = load_object_from_string(self.category_mapping_target)
            result = {k: c for k, c in result.items() if k not in mapping}
        return result

    def setup_category_id_and_number(self) -> None:
        """Category ids sorted as strings (Suitcase last); number = position."""
        self.category_ids = sorted(self.categories)
        if SUITCASE_ID in self.category_ids:
            self.category_ids.remove(SUITCASE_ID)
            self.category_ids.append(SUITCASE_ID)
        self.category_number = {cid: i for i, cid in enumerate(self.category_ids)}

    @property
    def no_classes(self) -> int:
        """Number of category tokens."""
        return self.no_object_classes or len(self.categories)

    def get_category_id(self, category_no: int) -> str:
        return self.category_ids[category_no]

    def get_category_number(self, category_id: str) -> int:
        return self.category_number[category_id]

    def get_textual_label_for_category_id(self, category_id: str) -> str:
        return self.categories[category_id].name

    def get_textual_label_for_category_no(self, category_no: int) -> str:
        """Category name of a category number (used to label layout plots)."""
        return self.categories[self.get_category_id(category_no)].name

    # -- annotations ---------------------------------------------------------------------

    def set_annotations(
        self,
        image_descriptions: Mapping[Any, ImageDescription] | None,
        annotations: Mapping[Any, list[Annotation]],
    ) -> None:
        """Filter by object number/area, keep the described images (all when
        `image_descriptions` is None), build the builders."""
        kept = filter_object_number(
            annotations,
            self.min_object_area,
            self.min_objects_per_image,
            self.max_objects_per_image,
        )
        if image_descriptions is None:
            self.image_ids = list(kept)  # original order
            self.image_descriptions = {}
        else:
            self.image_ids = [k for k in kept if k in image_descriptions]
            self.image_descriptions = {k: image_descriptions[k] for k in self.image_ids}
        self.annotations = {k: kept[k] for k in self.image_ids}
        if not self.image_ids:
            raise ValueError(
                f"{type(self).__name__}({self.data_path}, {self.split}): no image has "
                f"{self.min_objects_per_image}..{self.max_objects_per_image} objects of "
                f"relative area > {self.min_object_area}"
            )
        args = (
            self.no_classes,
            self.max_objects_per_image,
            self.no_tokens,
            self.encode_crop,
            self.use_group_parameter,
            self.use_additional_parameters,
        )
        self.conditional_builders = {
            "objects_center_points": ObjectsCenterPointsConditionalBuilder(*args),
            "objects_bbox": ObjectsBoundingBoxConditionalBuilder(*args),
        }
        self._tracker = BadFileTracker(len(self.image_ids), name=type(self).__name__)
        logger.info(
            "%s(%s): %d images, %d categories",
            type(self).__name__,
            self.split,
            len(self.image_ids),
            len(self.categories),
        )

    def get_image_path(self, image_id: Any) -> str:
        """File of an image; subclasses define the layout."""
        raise NotImplementedError

    def get_image_description(self, image_id: Any) -> dict[str, Any]:
        """The description fields that start an example (`ImageDescription` as a dict)."""
        return self.image_descriptions[image_id]._asdict()

    # -- examples ------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_skipped(self) -> int:
        """Distinct unreadable images skipped so far (summed over DataLoader workers)."""
        return self._tracker.num_skipped

    def _load_example(self, n: int) -> dict[str, Any]:
        image_id = self.image_ids[n]
        sample: dict[str, Any] = dict(self.get_image_description(image_id))
        sample["annotations"] = list(self.annotations[image_id])
        sample["image_path"] = str(self.get_image_path(image_id))
        needs_image = any(k in self.keys for k in ("image", "crop_bbox", "flipped", *BUILDER_KEYS))
        crop_bbox, flipped = None, None
        if needs_image:
            img = load_image(sample["image_path"], exif_transpose=False, original_convert=True)
            x = torch.from_numpy(np.array(img, dtype=np.uint8)).permute(2, 0, 1)  # (3, H, W)
            crop_bbox, x = scene_crop(x, self.target_image_size, self.crop_method)
            if self.random_flip:
                flipped = bool(torch.rand(1) < 0.5)
                if flipped:
                    x = x.flip(-1)
            sample["image"] = (x.permute(1, 2, 0) / 127.5 - 1.0).numpy()  # (S, S, 3) float32
        sample["crop_bbox"] = crop_bbox
        sample["flipped"] = flipped
        for key in BUILDER_KEYS:
            if key in self.keys:
                builder = self.conditional_builders[key]
                sample[key] = builder.build(sample["annotations"], crop_bbox, bool(flipped))
        return {key: sample[key] for key in self.keys}

    def __getitem__(self, n: int) -> dict[str, Any]:
        return self._tracker.fetch(n, self._load_example)
