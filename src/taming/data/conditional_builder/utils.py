"""Box geometry and plotting helpers for the layout -> token builders (original `utils.py`).

Boxes are `(x0, y0, w, h)` relative to the image. Plot text uses the original's font
`/usr/share/fonts/truetype/lato/Lato-Regular.ttf` when present, else DejaVu Sans, else PIL's
built-in default font, so plotting never fails for want of a font file.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, TypeVar

from PIL import ImageDraw, ImageFont

from taming.data.helper_types import Annotation, BoundingBox

logger = logging.getLogger(__name__)

__all__ = [
    "BLACK",
    "COLOR_PALETTE",
    "FULL_CROP",
    "GRAY_75",
    "WHITE",
    "absolute_bbox",
    "additional_parameters_string",
    "draw_text",
    "filter_annotations",
    "get_circle_size",
    "get_plot_font_size",
    "horizontally_flip_bbox",
    "intersection_area",
    "load_font",
    "load_object_from_string",
    "ordered_box",
    "pad_list",
    "rescale_annotations",
]

T = TypeVar("T")

FULL_CROP: BoundingBox = (0.0, 0.0, 1.0, 1.0)
WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRAY_75 = (63, 63, 63)
# matplotlib's tab10
COLOR_PALETTE = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
]
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/lato/Lato-Regular.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "DejaVuSans.ttf",
)


def intersection_area(rectangle1: BoundingBox, rectangle2: BoundingBox) -> float:
    """Area of the intersection of two (x0, y0, w, h) boxes (0 if disjoint)."""
    ax0, ay0, ax1, ay1 = rectangle1[0], rectangle1[1], *_corner(rectangle1)
    bx0, by0, bx1, by1 = rectangle2[0], rectangle2[1], *_corner(rectangle2)
    x_overlap = max(0.0, min(ax1, bx1) - max(ax0, bx0))
    y_overlap = max(0.0, min(ay1, by1) - max(ay0, by0))
    return x_overlap * y_overlap


def _corner(bbox: BoundingBox) -> tuple[float, float]:
    return bbox[0] + bbox[2], bbox[1] + bbox[3]


def horizontally_flip_bbox(bbox: BoundingBox) -> BoundingBox:
    """Mirror a relative box left-right."""
    return 1.0 - (bbox[0] + bbox[2]), bbox[1], bbox[2], bbox[3]


def absolute_bbox(relative_bbox: BoundingBox, width: int, height: int) -> tuple[int, int, int, int]:
    """Relative (x0, y0, w, h) -> absolute pixel corners (x0, y0, x1, y1)."""
    x0, y0 = relative_bbox[0] * width, relative_bbox[1] * height
    x1, y1 = x0 + relative_bbox[2] * width, y0 + relative_bbox[3] * height
    return int(x0), int(y0), int(x1), int(y1)


def ordered_box(box: tuple[int, int, int, int]) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) with x0 <= x1 and y0 <= y1 (PIL rejects inverted rectangles)."""
    return min(box[0], box[2]), min(box[1], box[3]), max(box[0], box[2]), max(box[1], box[3])


def pad_list(list_: list[T], pad_element: T, pad_to_length: int) -> list[T]:
    """`list_` followed by copies of `pad_element` up to `pad_to_length` items."""
    return list_ + [pad_element] * (pad_to_length - len(list_))


def _clamp(x: float) -> float:
    return max(min(x, 1.0), 0.0)


def rescale_bbox(bbox: BoundingBox, crop: BoundingBox, flip: bool) -> BoundingBox:
    """Express `bbox` relative to `crop`, clipped to it, optionally mirrored.

    NOTE: the box is clipped at both edges (`w = clamp(x1) - clamp(x0)`). The original kept
    `w = min(w / crop_w, 1 - x0)` after clamping `x0`, which lets a box that starts left of
    (above) the crop extend too far; with `encode_crop=True` (every shipped config) boxes are
    rescaled against the full image, lie in [0, 1], and both give the same result.
    """
    x0 = _clamp((bbox[0] - crop[0]) / crop[2])
    y0 = _clamp((bbox[1] - crop[1]) / crop[3])
    x1 = _clamp((bbox[0] + bbox[2] - crop[0]) / crop[2])
    y1 = _clamp((bbox[1] + bbox[3] - crop[1]) / crop[3])
    w, h = max(0.0, x1 - x0), max(0.0, y1 - y0)
    if flip:
        x0 = 1.0 - (x0 + w)
    return x0, y0, w, h


def rescale_annotations(
    annotations: Sequence[Annotation], crop_coordinates: BoundingBox, flip: bool
) -> list[Annotation]:
    """Annotations with boxes relative to `crop_coordinates` (clipped, optionally mirrored)."""
    return [a._replace(bbox=rescale_bbox(a.bbox, crop_coordinates, flip)) for a in annotations]


def filter_annotations(
    annotations: Sequence[Annotation], crop_coordinates: BoundingBox
) -> list[Annotation]:
    """Annotations whose box overlaps the crop with a positive area."""
    return [a for a in annotations if intersection_area(a.bbox, crop_coordinates) > 0.0]


def additional_parameters_string(annotation: Annotation, short: bool = True) -> str:
    """ "(g,o,d,i)"-style flags of an annotation ("" when none is set)."""
    flags = [
        ("group", annotation.is_group_of),
        ("occluded", annotation.is_occluded),
        ("depiction", annotation.is_depiction),
        ("inside", annotation.is_inside),
    ]
    names = [name[:1] if short else name for name, on in flags if on]
    return f"({','.join(names)})" if names else ""


def get_plot_font_size(font_size: int | None, figure_size: tuple[int, int]) -> int:
    """Font size for a plot: `font_size` or 10 / 12 / 15 by figure size (256, 512 steps)."""
    if font_size is not None:
        return font_size
    side = max(figure_size)
    return 15 if side >= 512 else 12 if side >= 256 else 10


def get_circle_size(figure_size: tuple[int, int]) -> int:
    """Radius of the center-point markers: 2 / 3 / 4 by figure size (256, 512 steps)."""
    side = max(figure_size)
    return 4 if side >= 512 else 3 if side >= 256 else 2


@lru_cache(maxsize=16)
def load_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """The first available font of `FONT_CANDIDATES`, else PIL's default font."""
    for path in FONT_CANDIDATES:
        try:
            return ImageFont.truetype(path, size=size)
        except OSError:
            continue
    logger.info(
        "no TrueType font found (tried %s); using PIL's default", ", ".join(FONT_CANDIDATES)
    )
    try:
        return ImageFont.load_default(size=size)
    except Exception:  # Pillow without FreeType: fixed-size bitmap font
        return ImageFont.load_default()


def draw_text(
    draw: ImageDraw.ImageDraw,
    xy: tuple[float, float],
    text: str,
    anchor: str,
    fill: tuple[int, int, int],
    font: Any,
) -> None:
    """`draw.text` with an anchor, dropping the anchor for fonts that do not support it."""
    try:
        draw.text(xy, text, anchor=anchor, fill=fill, font=font)
    except (ValueError, TypeError):
        draw.text(xy, text, fill=fill, font=font)


def load_object_from_string(object_string: str) -> Any:
    """Import `package.module.name` and return `name` (e.g. an allow-list constant)."""
    module_name, _, name = object_string.rpartition(".")
    if not module_name:
        raise ValueError(f"'{object_string}' is not a dotted path 'module.name'")
    return getattr(importlib.import_module(module_name), name)
