"""Open Images V6 boxes as scene layouts (original `AnnotatedObjectsOpenImages`).

Layout of `data_path` (e.g. the original's `data/open_images_annotations_100`, or the full set):
`class-descriptions-boxable.csv` (`<label id>,<name>`, 601 classes), per split an annotation
CSV (`oidv6-train-annotations-bbox.csv`, `validation-annotations-bbox.csv`,
`test-annotations-bbox.csv`; columns ImageID, Source, LabelName, Confidence, XMin, XMax, YMin,
YMax, IsOccluded, IsTruncated, IsGroupOf, IsDepiction, IsInside), an image list
(`train-images-boxable.csv`, `validation-images.csv`, `test-images.csv`; must exist) and the
image folders `train/`, `validation/`, `test/` with `<ImageID, zero-padded to 16>.jpg`.

- Categories: the allow list (`category_allow_list_target`, by name) and the mapping
  (`category_mapping_target`: its keys are dropped) of `AnnotatedObjectsDataset`; with the
  config's `taming.data.open_images_helper` lists 340 classes remain.
- Annotations: label ids are first mapped with the mapping (e.g. Woman -> Person); rows with
  `area >= min_object_area` of a kept category become `Annotation`s (id = row number, boxes
  `(XMin, YMin, XMax - XMin, YMax - YMin)`, the flags as bools); then objects with
  `area > min_object_area` and images with min..max objects (the later filter of the base).
- Images in the order of their first row; an example's description is
  `{"file_path", "file_name"}`. `use_additional_parameters` adds the occluded / depiction /
  inside flags to the category tokens.
"""

from __future__ import annotations

import csv
import os
from collections import defaultdict
from typing import Any, Literal

from tqdm import tqdm

from taming.data.annotated_objects_dataset import AnnotatedObjectsDataset
from taming.data.helper_types import Annotation, Category

__all__ = ["OPEN_IMAGES_STRUCTURE", "AnnotatedObjectsOpenImages", "load_categories"]

OPEN_IMAGES_STRUCTURE: dict[str, dict[str, str]] = {
    split: {
        "class_descriptions": "class-descriptions-boxable.csv",
        "annotations": annotations,
        "file_list": file_list,
        "files": split,
    }
    for split, annotations, file_list in (
        ("train", "oidv6-train-annotations-bbox.csv", "train-images-boxable.csv"),
        ("validation", "validation-annotations-bbox.csv", "validation-images.csv"),
        ("test", "test-annotations-bbox.csv", "test-images.csv"),
    )
}
_COLUMNS = ("ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax")
_FLAGS = ("IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside")


def load_categories(path: str) -> dict[str, Category]:
    """`<id>,<name>` rows -> {id: Category}."""
    with open(path, encoding="utf-8", newline="") as f:
        return {
            row[0]: Category(id=row[0], name=row[1], super_category=None)
            for row in csv.reader(f)
            if row
        }


class AnnotatedObjectsOpenImages(AnnotatedObjectsDataset):
    """Open Images layouts; arguments as `AnnotatedObjectsDataset`, plus:

    Args:
        use_additional_parameters: encode occluded / depiction / inside in category tokens.
    """

    def __init__(
        self,
        use_additional_parameters: bool = False,
        *,
        data_path: str,
        split: Literal["train", "validation", "test"],
        keys: list[str] | None = None,
        target_image_size: int = 256,
        min_object_area: float = 0.0001,
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
        super().__init__(
            data_path=data_path,
            split=split,
            keys=keys,
            target_image_size=target_image_size,
            min_object_area=min_object_area,
            min_objects_per_image=min_objects_per_image,
            max_objects_per_image=max_objects_per_image,
            crop_method=crop_method,
            random_flip=random_flip,
            no_tokens=no_tokens,
            use_group_parameter=use_group_parameter,
            encode_crop=encode_crop,
            category_allow_list_target=category_allow_list_target,
            category_mapping_target=category_mapping_target,
            no_object_classes=no_object_classes,
        )
        self.use_additional_parameters = use_additional_parameters
        self.paths = {
            k: os.path.join(data_path, v) for k, v in OPEN_IMAGES_STRUCTURE[split].items()
        }
        for path in self.paths.values():
            if not os.path.exists(path):
                expected = ", ".join(OPEN_IMAGES_STRUCTURE[split].values())
                raise FileNotFoundError(
                    f"AnnotatedObjectsOpenImages data structure error: {path} does not exist "
                    f"(expected the Open Images layout: {expected})"
                )
        self.categories = self.filter_categories(load_categories(self.paths["class_descriptions"]))
        self.setup_category_id_and_number()
        self.category_mapping = self._mapping()
        self.set_annotations(None, self._load_annotations(self.paths["annotations"]))

    def _mapping(self) -> dict[str, str]:
        if not self.category_mapping_target:
            return {}
        from taming.data.conditional_builder.utils import load_object_from_string

        return dict(load_object_from_string(self.category_mapping_target))

    def _load_annotations(self, path: str) -> dict[str, list[Annotation]]:
        annotations: dict[str, list[Annotation]] = defaultdict(list)
        numbers = self.category_number
        with open(path, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f)
            missing = [c for c in (*_COLUMNS, *_FLAGS) if c not in (reader.fieldnames or ())]
            if missing:
                raise ValueError(f"{path}: missing column {missing[0]}")
            large = os.path.getsize(path) > 50_000_000
            rows = tqdm(reader, desc="Loading Open Images annotations", disable=not large)
            for i, row in enumerate(rows):
                try:
                    x0, x1 = float(row["XMin"]), float(row["XMax"])
                    y0, y1 = float(row["YMin"]), float(row["YMax"])
                    width, height = x1 - x0, y1 - y0
                    category_id = self.category_mapping.get(row["LabelName"], row["LabelName"])
                    if width * height < self.min_object_area or category_id not in numbers:
                        continue
                    flags = {c: bool(int(row[c])) for c in _FLAGS}
                    confidence = float(row["Confidence"])
                except (TypeError, ValueError) as e:
                    raise ValueError(f"{path}: row {i + 2} is malformed ({e})") from None
                annotations[row["ImageID"]].append(
                    Annotation(
                        id=i,
                        image_id=row["ImageID"],
                        source=row["Source"],
                        category_id=category_id,
                        category_no=numbers[category_id],
                        confidence=confidence,
                        bbox=(x0, y0, width, height),
                        area=width * height,
                        is_occluded=flags["IsOccluded"],
                        is_truncated=flags["IsTruncated"],
                        is_group_of=flags["IsGroupOf"],
                        is_depiction=flags["IsDepiction"],
                        is_inside=flags["IsInside"],
                    )
                )
        return dict(annotations)

    def get_image_path(self, image_id: Any) -> str:
        return os.path.join(self.paths["files"], f"{image_id:0>16}.jpg")

    def get_image_description(self, image_id: Any) -> dict[str, Any]:
        path = self.get_image_path(image_id)
        return {"file_path": path, "file_name": os.path.basename(path)}
