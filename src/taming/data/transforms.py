"""Small array helpers and the torchvision-style crops of the scene-layout datasets.

- `to_float_image`: uint8 (H, W, 3) -> float32 in [-1, 1] (`x / 127.5 - 1`);
- `hflip`: mirror an (H, W, ...) array left-right;
- the annotated-objects pipeline of the original (torchvision >= 0.17 transforms on uint8 CHW
  tensors), re-implemented on torch without torchvision:
  * `tv_resize`: `transforms.Resize` on a tensor: the image goes to float32,
    `torch.nn.functional.interpolate(bilinear, align_corners=False, antialias=True)`, is
    rounded and cast back to uint8; an int size scales the shortest side (the other side
    truncated: `int(size * long / short)`), a pair is (height, width); same size = no-op;
  * `scene_crop`: the crop methods `none` / `center` / `random-1d` (alias `random`) /
    `random-2d` with the relative crop box `(x0, y0, w, h)` of the original's
    `*ReturnCoordinates` transforms (center: from the resized image's aspect ratio;
    random-1d: `torch.randint` for top then left, as `RandomCrop.get_params`; random-2d:
    `random.randint` for the side, top, left);
  * the flip is drawn with `torch.rand(1) < 0.5` (`RandomHorizontalFlip`).

The albumentations transforms (segmentation, depth, faces, ImageNet sets) are in
`taming.data.albu`.
"""

from __future__ import annotations

import random

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CROP_METHODS",
    "hflip",
    "scene_crop",
    "to_float_image",
    "tv_center_crop",
    "tv_resize",
]

CROP_METHODS = ("none", "center", "random", "random-1d", "random-2d")


def hflip(arr: np.ndarray) -> np.ndarray:
    """Mirror an (H, W, ...) array left-right (contiguous copy)."""
    return np.ascontiguousarray(arr[:, ::-1])


def to_float_image(arr) -> np.ndarray:
    """uint8 (H, W, 3) -> float32 (H, W, 3) in [-1, 1], i.e. `x / 127.5 - 1`."""
    a = np.asarray(arr)
    return (a / 127.5 - 1.0).astype(np.float32)


def tv_resize(img: torch.Tensor, size: int | tuple[int, int]) -> torch.Tensor:
    """torchvision `Resize(size)` on a uint8 (C, H, W) tensor (antialiased bilinear)."""
    h, w = img.shape[-2:]
    if isinstance(size, int):
        short, long = (w, h) if w <= h else (h, w)
        new_short, new_long = size, int(size * long / short)
        new_w, new_h = (new_short, new_long) if w <= h else (new_long, new_short)
    else:
        new_h, new_w = size
    if (new_h, new_w) == (h, w):
        return img
    x = img.to(torch.float32)[None]  # (1, C, H, W)
    x = F.interpolate(x, size=[new_h, new_w], mode="bilinear", align_corners=False, antialias=True)
    return torch.round(x[0]).to(img.dtype)


def tv_center_crop(img: torch.Tensor, size: int) -> torch.Tensor:
    """torchvision `center_crop` (offsets `int(round((H - size) / 2))`)."""
    h, w = img.shape[-2:]
    if h < size or w < size:
        raise ValueError(f"cannot center-crop {size}x{size} from a {w}x{h} image")
    top, left = int(round((h - size) / 2.0)), int(round((w - size) / 2.0))
    return img[..., top : top + size, left : left + size]


def _center_bbox(width: int, height: int) -> tuple[float, float, float, float]:
    if width > height:
        w = height / width
        return 0.5 - w / 2, 0.0, w, 1.0
    h = width / height
    return 0.0, 0.5 - h / 2, 1.0, h


def scene_crop(
    img: torch.Tensor, size: int, method: str
) -> tuple[tuple[float, float, float, float] | None, torch.Tensor]:
    """Resize/crop a uint8 (C, H, W) image as the original annotated-objects pipeline.

    Returns:
        (crop_bbox, image): the relative crop box (None for method "none") and the
        (C, size, size) uint8 result.
    """
    if method == "none":
        return None, tv_resize(img, (size, size))
    if method == "center":
        img = tv_resize(img, size)
        h, w = img.shape[-2:]
        return _center_bbox(w, h), tv_center_crop(img, size)
    if method in ("random", "random-1d"):
        img = tv_resize(img, size)
        h, w = img.shape[-2:]
        if h == size and w == size:
            top = left = 0
        else:
            top = int(torch.randint(0, h - size + 1, size=(1,)).item())
            left = int(torch.randint(0, w - size + 1, size=(1,)).item())
        bbox = (left / w, top / h, size / w, size / h)
        return bbox, img[..., top : top + size, left : left + size]
    if method == "random-2d":
        h, w = img.shape[-2:]
        largest = min(w, h)
        side = largest if largest <= size else random.randint(size, largest)
        top, left = random.randint(0, h - side), random.randint(0, w - side)
        bbox = (left / w, top / h, side / w, side / h)
        return bbox, tv_resize(img[..., top : top + side, left : left + side], size)
    raise ValueError(f"unknown crop_method '{method}' (choose from {', '.join(CROP_METHODS)})")
