"""The albumentations (0.4.3) transforms that the original datasets used, with the same semantics.

The original composed `SmallestMaxSize`, `CenterCrop`, `RandomCrop`, `HorizontalFlip` and
`Resize` from albumentations; these classes give the same results on numpy arrays, including
the same use of Python's `random` module (so a seeded run crops where the original cropped):

- every transform draws `random.random() < p` once per call (p = 1 except `HorizontalFlip`,
  p = 0.5), `Compose` draws once more before its transforms; `RandomCrop` then draws
  `h_start`, `w_start` in [0, 1) and crops at `int((H - h) * h_start)`, `int((W - w) * w_start)`;
- `CenterCrop` starts at `(H - h) // 2`, `(W - w) // 2`; a crop larger than the image raises
  `ValueError` (as albumentations did); like albumentations, sizes, scales and crop offsets
  are computed from each target's own shape (targets of different sizes stay consistent with
  the original, e.g. D-RIN's image and depth);
- `SmallestMaxSize(s)`: scale `s / min(H, W)`, new sides rounded half to even, resized with
  `taming.data.cvresize.resize` (OpenCV when installed); a scale of exactly 1 is a no-op;
- targets are passed by keyword: `image` and any `additional_targets` of type "image" use the
  transform's interpolation, `mask` and targets of type "mask" use nearest neighbour.

Example: `Compose([SmallestMaxSize(256), CenterCrop(256, 256)],
additional_targets={"depth": "image"})(image=img, depth=d)` -> `{"image": ..., "depth": ...}`.
"""

from __future__ import annotations

import random
from typing import Any

import numpy as np

from taming.data.cvresize import check_interpolation, resize

__all__ = [
    "CenterCrop",
    "Compose",
    "HorizontalFlip",
    "RandomCrop",
    "Resize",
    "SmallestMaxSize",
]


class _Transform:
    p: float = 1.0

    def params(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {}

    def apply(self, arr: np.ndarray, kind: str, **params: Any) -> np.ndarray:
        raise NotImplementedError

    def __call__(self, _types: dict[str, str] | None = None, **targets: np.ndarray) -> dict:
        if not random.random() < self.p:
            return dict(targets)
        first = targets.get("image", next(iter(targets.values())))
        params = self.params(first.shape)
        types = {"image": "image", "mask": "mask", **(_types or {})}
        return {k: self.apply(v, types.get(k, "image"), **params) for k, v in targets.items()}


class SmallestMaxSize(_Transform):
    """Scale so that the shortest side is `max_size` (up or down)."""

    def __init__(self, max_size: int, interpolation: str = "bilinear"):
        self.max_size = int(max_size)
        self.interpolation = check_interpolation(interpolation)

    def apply(self, arr: np.ndarray, kind: str, **params: Any) -> np.ndarray:
        h, w = arr.shape[:2]
        scale = self.max_size / float(min(w, h))
        if scale == 1.0:
            return arr
        new_h, new_w = round(h * scale), round(w * scale)  # Python 3 rounds half to even
        interp = "nearest" if kind == "mask" else self.interpolation
        return resize(arr, new_w, new_h, interp)


class Resize(_Transform):
    """Resize to exactly (height, width)."""

    def __init__(self, height: int, width: int, interpolation: str = "bilinear"):
        self.height, self.width = int(height), int(width)
        self.interpolation = check_interpolation(interpolation)

    def apply(self, arr: np.ndarray, kind: str, **params: Any) -> np.ndarray:
        interp = "nearest" if kind == "mask" else self.interpolation
        return resize(arr, self.width, self.height, interp)


def _check_crop(shape: tuple[int, ...], height: int, width: int) -> None:
    if shape[0] < height or shape[1] < width:
        raise ValueError(
            f"requested crop size ({height}, {width}) is larger than the image size "
            f"({shape[0]}, {shape[1]})"
        )


class CenterCrop(_Transform):
    """Crop the central (height, width) window (offsets from each target's own shape)."""

    def __init__(self, height: int, width: int):
        self.height, self.width = int(height), int(width)

    def offsets(self, shape: tuple[int, ...], **params: Any) -> tuple[int, int]:
        return (shape[0] - self.height) // 2, (shape[1] - self.width) // 2

    def apply(self, arr: np.ndarray, kind: str, **params: Any) -> np.ndarray:
        _check_crop(arr.shape, self.height, self.width)
        top, left = self.offsets(arr.shape, **params)
        return arr[top : top + self.height, left : left + self.width]


class RandomCrop(CenterCrop):
    """Crop a random (height, width) window (position from two `random.random()` draws, shared
    by all targets)."""

    def params(self, shape: tuple[int, ...]) -> dict[str, Any]:
        return {"h_start": random.random(), "w_start": random.random()}

    def offsets(self, shape: tuple[int, ...], h_start: float = 0.0, w_start: float = 0.0):
        return int((shape[0] - self.height) * h_start), int((shape[1] - self.width) * w_start)


class HorizontalFlip(_Transform):
    """Mirror left-right with probability `p`."""

    def __init__(self, p: float = 0.5):
        self.p = p

    def apply(self, arr: np.ndarray, kind: str, **params: Any) -> np.ndarray:
        return np.ascontiguousarray(arr[:, ::-1])


class Compose:
    """Apply transforms in order to `image` and `additional_targets` ({name: "image" | "mask"})."""

    def __init__(
        self, transforms: list[_Transform], additional_targets: dict[str, str] | None = None
    ):
        self.transforms = list(transforms)
        self.additional_targets = dict(additional_targets or {})

    def __call__(self, **targets: np.ndarray) -> dict[str, np.ndarray]:
        random.random()  # albumentations' Compose(p=1) draws once before its transforms
        out = dict(targets)
        for t in self.transforms:
            out = t(self.additional_targets, **out)
        return out
