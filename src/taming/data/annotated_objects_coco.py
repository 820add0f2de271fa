"""COCO 2017 images with thing + stuff boxes as scene layouts (original `AnnotatedObjectsCoco`).

Layout of `data_path` (e.g. the shipped `data/coco_annotations_100`, or full COCO):
`annotations/{instances,stuff}_{train,val}2017.json` and `{train,val}2017/<file_name>`.
Categories: the 80 things (`use_things`) and the 91 stuff classes without "other"
(`use_stuff`) = 171, numbered in the string order of their ids. Boxes are divided by the
image width/height; `area` is the relative box area `w * h`; `is_group_of` = `iscrowd`;
annotations of unknown (filtered) categories are skipped. Polygon/RLE segmentations are not
kept (`Annotation.segmentation` is None), which saves most of the memory of the full JSONs.
See `taming.data.annotated_objects_dataset` for filtering, the image pipeline and the keys.
"""

from __future__ import annotations

import json
import logging
import os
from collections import defaultdict
from typing import Any, Literal

from taming.data.annotated_objects_dataset import AnnotatedObjectsDataset
from taming.data.helper_types import Annotation, Category, ImageDescription

logger = logging.getLogger(__name__)

__all__ = ["COCO_PATH_STRUCTURE", "AnnotatedObjectsCoco"]

COCO_PATH_STRUCTURE: dict[str, dict[str, str]] = {
    "train": {
        "instances_annotations": "annotations/instances_train2017.json",
        "stuff_annotations": "annotations/stuff_train2017.json",
        "files": "train2017",
    },
    "validation": {
        "instances_annotations": "annotations/instances_val2017.json",
        "stuff_annotations": "annotations/stuff_val2017.json",
        "files": "val2017",
    },
}


def _load_json(path: str) -> dict[str, Any]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"COCO annotation file not found: {os.path.abspath(path)}")
    with open(path, encoding="utf-8") as f:
        return json.load(f)


class AnnotatedObjectsCoco(AnnotatedObjectsDataset):
    """COCO thing/stuff layouts; arguments as `AnnotatedObjectsDataset`, plus:

    Args:
        use_things: include the 80 thing categories (instances_*.json).
        use_stuff: include the 91 stuff categories (stuff_*.json, without "other").
    """

    def __init__(
        self,
        data_path: str,
        split: Literal["train", "validation"],
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
        use_things: bool = True,
        use_stuff: bool = True,
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
        if split not in COCO_PATH_STRUCTURE:
            raise ValueError(f"COCO has splits {tuple(COCO_PATH_STRUCTURE)}, got '{split}'")
        if not (use_things or use_stuff):
            raise ValueError("at least one of use_things / use_stuff must be true")
        self.use_things = use_things
        self.use_stuff = use_stuff
        structure = COCO_PATH_STRUCTURE[split]
        self.image_folder = os.path.join(data_path, structure["files"])
        sources = []
        if use_things:
            sources.append(_load_json(os.path.join(data_path, structure["instances_annotations"])))
        if use_stuff:
            sources.append(_load_json(os.path.join(data_path, structure["stuff_annotations"])))

        categories = {
            str(c["id"]): Category(
                id=str(c["id"]), super_category=c.get("supercategory"), name=c["name"]
            )
            for source in sources
            for c in source["categories"]
            if c["name"] != "other"
        }
        self.categories = self.filter_categories(categories)
        self.setup_category_id_and_number()

        descriptions: dict[int, ImageDescription] = {}
        for source in sources:
            for img in source["images"]:
                descriptions.setdefault(img["id"], self._describe_image(img))

        annotations: dict[int, list[Annotation]] = defaultdict(list)
        skipped = 0
        for source in sources:
            for ann in source["annotations"]:
                category_id = str(ann["category_id"])
                description = descriptions.get(ann["image_id"])
                if category_id not in self.category_number or description is None:
                    skipped += 1
                    continue
                annotations[ann["image_id"]].append(
                    self._make_annotation(ann, category_id, description)
                )
        if skipped:
            logger.debug("skipped %d annotations of unknown categories or images", skipped)
        self.set_annotations(descriptions, annotations)

    @staticmethod
    def _describe_image(img: dict[str, Any]) -> ImageDescription:
        return ImageDescription(
            id=img["id"],
            file_name=img["file_name"],
            original_size=(img["width"], img["height"]),
            license=img.get("license"),
            coco_url=img.get("coco_url"),
            date_captured=img.get("date_captured"),
            flickr_url=img.get("flickr_url"),
            coco_id=img["id"],
        )

    def _make_annotation(
        self, ann: dict[str, Any], category_id: str, description: ImageDescription
    ) -> Annotation:
        width, height = description.original_size
        x, y, w, h = (float(v) for v in ann["bbox"])
        bbox = (x / width, y / height, w / width, h / height)
        return Annotation(
            area=bbox[2] * bbox[3],
            image_id=ann["image_id"],
            bbox=bbox,
            category_no=self.category_number[category_id],
            category_id=category_id,
            id=ann.get("id"),
            is_group_of=ann.get("iscrowd", 0),
        )

    def get_image_path(self, image_id: Any) -> str:
        return os.path.join(self.image_folder, self.image_descriptions[image_id].file_name)
