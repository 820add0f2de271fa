"""Record types of the scene-layout data (original `taming/data/helper_types.py`).

Boxes are `(x0, y0, w, h)` relative to the image size (all in [0, 1]).
"""

from __future__ import annotations

from typing import Any, Literal, NamedTuple

__all__ = [
    "Annotation",
    "BoundingBox",
    "Category",
    "CropMethodType",
    "ImageDescription",
    "SplitType",
]

BoundingBox = tuple[float, float, float, float]  # (x0, y0, w, h), relative
CropMethodType = Literal["none", "random", "random-1d", "center", "random-2d"]
SplitType = Literal["train", "validation", "test"]


class ImageDescription(NamedTuple):
    """One image of an annotated-objects dataset."""

    id: int | str
    file_name: str
    original_size: tuple[int, int]  # (width, height)
    url: str | None = None
    license: int | None = None
    coco_url: str | None = None
    date_captured: str | None = None
    flickr_url: str | None = None
    flickr_id: str | None = None
    coco_id: int | None = None


class Category(NamedTuple):
    """An object category; `id` is the dataset's id as a string (e.g. "1", "/m/01s55n")."""

    id: str
    super_category: str | None
    name: str


class Annotation(NamedTuple):
    """One object of an image; `category_no` is the category's position (its token)."""

    area: float  # relative box area w * h
    image_id: int | str
    bbox: BoundingBox
    category_no: int
    category_id: str
    id: int | None = None
    source: str | None = None
    confidence: float | None = None
    is_group_of: bool | None = None
    is_truncated: bool | None = None
    is_occluded: bool | None = None
    is_depiction: bool | None = None
    is_inside: bool | None = None
    segmentation: dict[str, Any] | None = None
