"""Image transforms on PIL images and numpy arrays: shortest-side resize, crops, flips, scaling.

Replaces the original's albumentations/torchvision pipelines with PIL + numpy:

- `SmallestMaxSize(size)` -> `resize_shortest_side` (shortest side -> `size`, the other side
  `round(side * size / shortest)`, as albumentations rounds; smaller images are upscaled).
  NOTE: PIL filters antialias when downscaling, cv2's `INTER_LINEAR` (the original default)
  does not, so pixels differ slightly from the original pipeline (not the geometry).
- `CenterCrop` / `RandomCrop` -> `crop_box` (center offset `(W - size) // 2` as albumentations).
- `HorizontalFlip` -> `hflip`.
- `x / 127.5 - 1` -> `to_float_image` (uint8 HWC -> float32 HWC in [-1, 1]).

The scene-layout crops of the annotated-objects datasets, which also return the relative crop
box `(x0, y0, w, h)`, are `scene_crop_geometry` and `apply_scene_crop`.

Randomness comes from Python's `random` module, which PyTorch's DataLoader (and Lightning's
`seed_everything`) seed per worker.
"""

from __future__ import annotations

import random
from typing import NamedTuple

import numpy as np
from PIL import Image

__all__ = [
    "INTERPOLATIONS",
    "SceneCrop",
    "apply_scene_crop",
    "crop_box",
    "hflip",
    "resampling",
    "resize_shortest_side",
    "scene_crop_geometry",
    "shortest_side_size",
    "to_float_image",
]

INTERPOLATIONS: dict[str, Image.Resampling] = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,  # cv2.INTER_AREA: box averaging
    "lanczos": Image.Resampling.LANCZOS,
}

CROP_METHODS = ("none", "center", "random", "random-1d", "random-2d")


def resampling(name: str) -> Image.Resampling:
    """PIL filter for an interpolation name (nearest, bilinear, bicubic, area, lanczos)."""
    try:
        return INTERPOLATIONS[name]
    except KeyError:
        raise ValueError(
            f"unknown interpolation '{name}' (choose from {', '.join(INTERPOLATIONS)})"
        ) from None


def shortest_side_size(width: int, height: int, size: int) -> tuple[int, int]:
    """(width, height) after scaling the shortest side to `size` (albumentations rounding)."""
    scale = size / min(width, height)
    return max(1, round(width * scale)), max(1, round(height * scale))


def resize_shortest_side(
    img: Image.Image, size: int, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> Image.Image:
    """Scale `img` so that its shortest side is `size` (up or down); no-op if it already is."""
    new = shortest_side_size(img.width, img.height, size)
    return img if new == img.size else img.resize(new, resample)


def crop_box(width: int, height: int, size: int, random_crop: bool) -> tuple[int, int, int, int]:
    """PIL box `(left, top, right, bottom)` of a `size` x `size` crop, centered or random.

    Raises:
        ValueError: the image is smaller than the crop.
    """
    if width < size or height < size:
        raise ValueError(f"cannot crop {size}x{size} from a {width}x{height} image")
    if random_crop:
        left, top = random.randint(0, width - size), random.randint(0, height - size)
    else:
        left, top = (width - size) // 2, (height - size) // 2
    return left, top, left + size, top + size


def hflip(arr: np.ndarray) -> np.ndarray:
    """Mirror an (H, W, ...) array left-right (contiguous copy)."""
    return np.ascontiguousarray(arr[:, ::-1])


def to_float_image(arr: np.ndarray | Image.Image) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W, 3) in [-1, 1], i.e. `x / 127.5 - 1`."""
    a = np.asarray(arr, dtype=np.uint8)
    return (a.astype(np.float32) / 127.5 - 1.0).astype(np.float32)


class SceneCrop(NamedTuple):
    """Geometry of one scene-layout crop (see `scene_crop_geometry`).

    Attributes:
        resize_to: (width, height) to resize the image to before cropping, or None.
        box: PIL crop box (left, top, right, bottom) in the (resized) image, or None.
        resize_after: (width, height) to resize the crop to, or None.
        crop_bbox: the crop as (x0, y0, w, h) relative to the full image.
    """

    resize_to: tuple[int, int] | None
    box: tuple[int, int, int, int] | None
    resize_after: tuple[int, int] | None
    crop_bbox: tuple[float, float, float, float]


def scene_crop_geometry(width: int, height: int, size: int, method: str) -> SceneCrop:
    """Plan the crop of the annotated-objects datasets for an image of `width` x `height`.

    Methods (the original's torchvision pipelines):
        "none": resize to (size, size), no crop; crop_bbox is the full image (0, 0, 1, 1).
        "center": shortest side -> size (other side truncated, as `torchvision Resize(int)`),
            center crop; crop_bbox `(0.5 - w/2, 0, w, 1)` for landscape (`w = H / W`), etc.
        "random-1d" (alias "random"): shortest side -> size, random size x size crop;
            crop_bbox `(left / W', top / H', size / W', size / H')` in the resized image.
        "random-2d": random square of side `randint(min(size, m), m)`, `m = min(W, H)`, at a
            random position in the original image, then resized to (size, size).
    """
    if method == "none":
        return SceneCrop((size, size), None, None, (0.0, 0.0, 1.0, 1.0))
    if method in ("center", "random", "random-1d"):
        short, long = min(width, height), max(width, height)
        new_long = int(size * long / short)
        rw, rh = (new_long, size) if width >= height else (size, new_long)
        if method == "center":
            left, top = int(round((rw - size) / 2.0)), int(round((rh - size) / 2.0))
            if width > height:
                bbox = (0.5 - height / width / 2, 0.0, height / width, 1.0)
            else:
                bbox = (0.0, 0.5 - width / height / 2, 1.0, width / height)
        else:
            top, left = random.randint(0, rh - size), random.randint(0, rw - size)
            bbox = (left / rw, top / rh, size / rw, size / rh)
        return SceneCrop((rw, rh), (left, top, left + size, top + size), None, bbox)
    if method == "random-2d":
        m = min(width, height)
        side = random.randint(min(size, m), m)
        top, left = random.randint(0, height - side), random.randint(0, width - side)
        bbox = (left / width, top / height, side / width, side / height)
        return SceneCrop(None, (left, top, left + side, top + side), (size, size), bbox)
    raise ValueError(f"unknown crop_method '{method}' (choose from {', '.join(CROP_METHODS)})")


def apply_scene_crop(
    img: Image.Image, crop: SceneCrop, resample: Image.Resampling = Image.Resampling.BILINEAR
) -> Image.Image:
    """Apply a `SceneCrop` plan to a PIL image."""
    if crop.resize_to is not None and crop.resize_to != img.size:
        img = img.resize(crop.resize_to, resample)
    if crop.box is not None:
        img = img.crop(crop.box)
    if crop.resize_after is not None and crop.resize_after != img.size:
        img = img.resize(crop.resize_after, resample)
    return img
