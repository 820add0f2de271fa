"""ImageNet data of the original `taming/data/imagenet.py`: the D-RIN examples (image + depth).

`DRINExamples(size=256, root="data")`: the 25 examples of `<root>/drin_examples.txt`, images
`<root>/drin_images/<wnid>/<name>.JPEG`, depth maps `<root>/drin_depth/<wnid>/<name>.png`.
A depth PNG is RGBA whose 4 bytes per pixel are one little-endian float32 (`rgba_to_depth`);
it is min-max normalised per image to [0, 1] (range guarded by 1e-8) and mapped to [-1, 1] by
`2d - 1`, at full resolution. Image and depth are then each resized (shortest side -> size;
bilinear) and center-cropped, as the original's preprocessor. Keys: `image` (float32
(size, size, 3) in [-1, 1]) and `depth` (float32 (size, size) in [-1, 1]).

The full ImageNet datasets (`ImageNetTrain`, `ImageNetValidation`, the `*WithDepth` and D-RIN
variants) come with a later data issue; constructing them now raises `NotImplementedError`.
"""

from __future__ import annotations

import os
from typing import Any, NoReturn

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data.io import BadFileTracker, BadImageError, load_image
from taming.data.transforms import crop_box, resize_shortest_side, to_float_image

__all__ = [
    "DRINExamples",
    "ImageNetTrain",
    "ImageNetTrainWithDepth",
    "ImageNetValidation",
    "ImageNetValidationWithDepth",
    "RINTrainWithDepth",
    "RINValidationWithDepth",
    "load_depth",
    "rgba_to_depth",
]


def rgba_to_depth(rgba: np.ndarray) -> np.ndarray:
    """Reinterpret uint8 (H, W, 4) RGBA bytes as float32 (H, W) depth (little-endian)."""
    if rgba.dtype != np.uint8 or rgba.ndim != 3 or rgba.shape[2] != 4:
        raise ValueError(f"expected uint8 (H, W, 4), got {rgba.dtype} {rgba.shape}")
    h, w = rgba.shape[:2]
    return np.ascontiguousarray(rgba).view("<f4").reshape(h, w).astype(np.float32)


def load_depth(path: str) -> np.ndarray:
    """Read an RGBA-float depth PNG, normalised to float32 (H, W) in [-1, 1].

    Raises:
        BadImageError: unreadable, not RGBA, or non-finite depth values.
    """
    try:
        with Image.open(path) as img:
            img.load()
            if img.mode != "RGBA":
                raise BadImageError(
                    path, f"depth PNG must be RGBA (packed float32), got {img.mode}"
                )
            rgba = np.array(img, dtype=np.uint8)  # (H, W, 4)
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except Exception as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e
    depth = rgba_to_depth(rgba)  # (H, W)
    if not np.isfinite(depth).all():
        raise BadImageError(path, "depth map contains NaN or infinite values")
    lo, hi = float(depth.min()), float(depth.max())
    depth = (depth - lo) / max(1e-8, hi - lo)
    return (2.0 * depth - 1.0).astype(np.float32)


def _resize_center_crop_depth(depth: np.ndarray, size: int) -> np.ndarray:
    img = resize_shortest_side(Image.fromarray(depth, mode="F"), size, Image.Resampling.BILINEAR)
    img = img.crop(crop_box(img.width, img.height, size, random_crop=False))
    return np.clip(np.asarray(img, dtype=np.float32), -1.0, 1.0)


class DRINExamples(Dataset):
    """The shipped D-RIN examples: ImageNet validation images with their depth maps.

    Args:
        size: shortest side and center-crop size (the original: 256).
        root: folder holding the original project's `data/` files.
    """

    def __init__(self, size: int = 256, root: str = "data"):
        list_file = os.path.join(root, "drin_examples.txt")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(f"example list not found: {list_file}")
        with open(list_file, encoding="utf-8") as f:
            relpaths = [line.strip() for line in f if line.strip()]
        self.size = size
        self.root = root
        self.image_paths = [os.path.join(root, "drin_images", p) for p in relpaths]
        self.depth_paths = [
            os.path.join(root, "drin_depth", os.path.splitext(p)[0] + ".png") for p in relpaths
        ]
        self._tracker = BadFileTracker(len(relpaths), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def num_skipped(self) -> int:
        """Distinct unreadable examples skipped so far (summed over DataLoader workers)."""
        return self._tracker.num_skipped

    def _load_example(self, i: int) -> dict[str, Any]:
        img = load_image(self.image_paths[i], exif_transpose=False)
        img = resize_shortest_side(img, self.size, Image.Resampling.BILINEAR)
        img = img.crop(crop_box(img.width, img.height, self.size, random_crop=False))
        depth = _resize_center_crop_depth(load_depth(self.depth_paths[i]), self.size)
        return {"image": to_float_image(np.asarray(img)), "depth": depth}

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


def _not_available(name: str) -> NoReturn:
    raise NotImplementedError(
        f"taming.data.imagenet.{name} is not available yet (the full ImageNet datasets come "
        "with a later release); for your own images use taming.data.folder.ImageFolderDataset "
        "or taming.data.custom.CustomTrain/CustomTest"
    )


class _NotAvailable:
    """Placeholder for an original dataset class that is not implemented yet."""

    def __init__(self, *args: Any, **kwargs: Any):
        _not_available(type(self).__name__)


class ImageNetTrain(_NotAvailable):
    """Placeholder: not available yet."""


class ImageNetValidation(_NotAvailable):
    """Placeholder: not available yet."""


class ImageNetTrainWithDepth(_NotAvailable):
    """Placeholder: not available yet."""


class ImageNetValidationWithDepth(_NotAvailable):
    """Placeholder: not available yet."""


class RINTrainWithDepth(_NotAvailable):
    """Placeholder: not available yet."""


class RINValidationWithDepth(_NotAvailable):
    """Placeholder: not available yet."""
