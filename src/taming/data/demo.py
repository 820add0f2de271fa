"""A tiny built-in dataset: crops of the colour photos bundled with scikit-image (no download).

`SkimagePhotos(size=64, length=None, split="train")` serves square crops of the photos that
ship inside the scikit-image package (`skimage/data/*`: astronaut, chelsea the cat, coffee,
rocket, motorcycle, Hubble deep field, immunohistochemistry, retina). It needs neither the
network nor the original project's `data/` folder, so demos and smoke tests can train
anywhere (`pip install scikit-image`, the `demo` extra).

- train: example `i` uses photo `i % n`; a random square of side `randint(min(size, m), m)`
  (`m` = the photo's shortest side, i.e. a random zoom) at a random position, resized to
  `size` (bicubic, antialiased), mirrored with probability 0.5 if `random_flip`;
- validation: example `i` uses photo `i % n` at zoom level `k = i // n`: the centered square
  of side `m / 2**k` (never below `min(size, m)`), resized to `size`; no flip, so validation
  examples are identical in every epoch. The default length is one per photo.

Examples: `{"image": float32 (size, size, 3) in [-1, 1], "file_path_": str,
"class_label": int (the photo's index)}`.
"""

from __future__ import annotations

import logging
import os
import random
from typing import Any, Literal

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data.io import load_image
from taming.data.transforms import hflip, to_float_image

logger = logging.getLogger(__name__)

__all__ = ["SKIMAGE_PHOTOS", "SkimagePhotos"]

# name -> file in skimage/data (colour photographs bundled with the package)
SKIMAGE_PHOTOS: dict[str, str] = {
    "astronaut": "astronaut.png",
    "chelsea": "chelsea.png",
    "coffee": "coffee.png",
    "rocket": "rocket.jpg",
    "motorcycle": "motorcycle_left.png",
    "hubble_deep_field": "hubble_deep_field.jpg",
    "immunohistochemistry": "ihc.png",
    "retina": "retina.jpg",
}
DEFAULT_TRAIN_LENGTH = 1000


def _skimage_data_dir() -> str:
    try:
        import skimage.data
    except ImportError as e:
        raise ImportError(
            "taming.data.demo.SkimagePhotos needs scikit-image: pip install scikit-image "
            "(or pip install 'taming[demo]')"
        ) from e
    return os.path.dirname(os.path.abspath(skimage.data.__file__))


class SkimagePhotos(Dataset):
    """Random (train) or fixed (validation) square crops of scikit-image's bundled photos.

    Args:
        size: output side.
        length: number of examples (default: 1000 for train, one per photo for validation).
        split: "train" (random crops/flips) or "validation" (fixed centered crops).
        random_flip: mirror train crops with probability 0.5.
        photos: subset of `SKIMAGE_PHOTOS` names (default: all).

    Raises:
        ImportError: scikit-image is not installed.
    """

    def __init__(
        self,
        size: int = 64,
        length: int | None = None,
        split: Literal["train", "validation"] = "train",
        random_flip: bool = True,
        photos: list[str] | None = None,
    ):
        if split not in ("train", "validation"):
            raise ValueError(f"split must be 'train' or 'validation', got '{split}'")
        if size <= 0:
            raise ValueError(f"size must be positive, got {size}")
        names = list(SKIMAGE_PHOTOS) if photos is None else list(photos)
        unknown = [n for n in names if n not in SKIMAGE_PHOTOS]
        if unknown:
            raise ValueError(
                f"unknown photo '{unknown[0]}' (choose from {', '.join(SKIMAGE_PHOTOS)})"
            )
        data_dir = _skimage_data_dir()
        self.names: list[str] = []
        self.paths: list[str] = []
        self.images: list[Image.Image] = []
        for name in names:
            path = os.path.join(data_dir, SKIMAGE_PHOTOS[name])
            if not os.path.isfile(path):
                logger.warning("scikit-image photo '%s' not found at %s; left out", name, path)
                continue
            self.names.append(name)
            self.paths.append(path)
            self.images.append(load_image(path))
        if not self.images:
            raise FileNotFoundError(f"none of the scikit-image photos {names} found in {data_dir}")
        self.size = size
        self.split = split
        self.random_flip = random_flip
        if length is None:
            length = DEFAULT_TRAIN_LENGTH if split == "train" else len(self.images)
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.length = length

    def __len__(self) -> int:
        return self.length

    def _crop_box(self, photo: int, i: int, width: int, height: int) -> tuple[int, int, int, int]:
        m = min(width, height)
        smallest = min(self.size, m)
        if self.split == "train":
            side = random.randint(smallest, m)
            left, top = random.randint(0, width - side), random.randint(0, height - side)
        else:
            zoom = i // len(self.images)
            side = max(smallest, m >> zoom)
            left, top = (width - side) // 2, (height - side) // 2
        return left, top, left + side, top + side

    def __getitem__(self, i: int) -> dict[str, Any]:
        if not -self.length <= i < self.length:
            raise IndexError(f"index {i} out of range for {self.length} examples")
        i %= self.length
        photo = i % len(self.images)
        img = self.images[photo]
        box = self._crop_box(photo, i, img.width, img.height)
        crop = img.resize((self.size, self.size), Image.Resampling.BICUBIC, box=box)
        arr = np.asarray(crop)  # (size, size, 3) uint8
        if self.split == "train" and self.random_flip and random.random() < 0.5:
            arr = hflip(arr)
        return {"image": to_float_image(arr), "file_path_": self.paths[photo], "class_label": photo}
