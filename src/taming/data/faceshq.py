"""Face datasets of the original `taming/data/faceshq.py`: CelebA-HQ, FFHQ and FacesHQ.

- `CelebAHQTrain/Validation(size, keys=None)`: `data/celebahq/<name>.npy` (the PGGAN
  `(1, 3, 1024, 1024)` uint8 arrays; `data/celebahq` is usually a symlink), `NumpyPaths`.
- `FFHQTrain/Validation(size, keys=None)`: `data/ffhq/<name>.png` (`images1024x1024`),
  `ImagePaths`. Both: shortest side -> `size` + center crop (OpenCV bilinear, as albumentations).
- Name lists: the original's `data/celebahq{train,validation}.txt` /
  `data/ffhq{train,validation}.txt` when they exist; otherwise the split that ships here
  (`face_names`): FFHQ train `00000.png`..`59999.png`, validation `60000.png`..`69999.png`;
  CelebA-HQ train `imgHQ00000.npy`..`imgHQ24999.npy`, validation `imgHQ25000.npy`..
  `imgHQ29999.npy` (60,000 / 10,000 and 25,000 / 5,000, the sizes of the original lists).
  `root` / `list_file` (ours) point elsewhere.
- `FacesHQTrain/Validation(size, keys=None, crop_size=None, coord=False)`: CelebA-HQ (`class`
  0) followed by FFHQ (`class` 1); `crop_size`: `RandomCrop` (train) / `CenterCrop`
  (validation); with `coord`, the map `arange(h*w).reshape(h, w, 1) / (h*w)` (float64, on the
  resized image) is cropped together with the image and returned as `coord`.
`keys` restricts the returned keys of the CelebA-HQ / FFHQ examples (as the original).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from taming.data import albu
from taming.data.base import ConcatDatasetWithIndex, ImagePaths, NumpyPaths

__all__ = [
    "CelebAHQTrain",
    "CelebAHQValidation",
    "FFHQTrain",
    "FFHQValidation",
    "FacesBase",
    "FacesHQTrain",
    "FacesHQValidation",
    "face_names",
]

_SPLITS = {
    ("ffhq", "train"): ("{:05d}.png", 0, 60_000),
    ("ffhq", "validation"): ("{:05d}.png", 60_000, 70_000),
    ("celebahq", "train"): ("imgHQ{:05d}.npy", 0, 25_000),
    ("celebahq", "validation"): ("imgHQ{:05d}.npy", 25_000, 30_000),
}


def face_names(dataset: str, split: str) -> list[str]:
    """The shipped name list of "ffhq" / "celebahq", "train" / "validation"."""
    fmt, start, stop = _SPLITS[(dataset, split)]
    return [fmt.format(i) for i in range(start, stop)]


def _names(dataset: str, split: str, list_file: str | None) -> list[str]:
    list_file = list_file or f"data/{dataset}{split}.txt"
    if os.path.isfile(list_file):
        with open(list_file, encoding="utf-8") as f:
            return [ln for ln in f.read().splitlines() if ln.strip()]
    return face_names(dataset, split)


def _check_root(root: str, what: str) -> None:
    if not os.path.isdir(root):
        raise FileNotFoundError(f"{what} not found: {root} (expected {what} there, see README)")


class FacesBase(Dataset):
    """An image dataset returning only `keys` of its examples (all keys when None)."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__()
        self.data: Dataset | None = None
        self.keys: list[str] | None = None

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        example = self.data[i]
        if self.keys is None:
            return example
        return {k: example[k] for k in self.keys}


class _Faces(FacesBase):
    dataset, split, what = "ffhq", "train", "FFHQ images1024x1024 (data/ffhq)"
    paths_cls: type = ImagePaths

    def __init__(
        self,
        size: int | None = None,
        keys: list[str] | None = None,
        root: str | None = None,
        list_file: str | None = None,
    ):
        super().__init__()
        root = root or f"data/{self.dataset}"
        _check_root(root, self.what)
        relpaths = _names(self.dataset, self.split, list_file)
        paths = [os.path.join(root, p) for p in relpaths]
        self.data = self.paths_cls(paths=paths, size=size, random_crop=False)
        self.keys = keys


class CelebAHQTrain(_Faces):
    """CelebA-HQ training faces (`.npy`)."""

    dataset, split, what = "celebahq", "train", "CelebA-HQ .npy files (data/celebahq)"
    paths_cls = NumpyPaths


class CelebAHQValidation(CelebAHQTrain):
    """CelebA-HQ validation faces (`.npy`)."""

    split = "validation"


class FFHQTrain(_Faces):
    """FFHQ training faces (`.png`)."""

    split = "train"


class FFHQValidation(FFHQTrain):
    """FFHQ validation faces (`.png`)."""

    split = "validation"


class _FacesHQ(Dataset):
    parts: tuple[type, type] = (CelebAHQTrain, FFHQTrain)
    crop_cls: type = albu.RandomCrop

    def __init__(
        self,
        size: int,
        keys: list[str] | None = None,
        crop_size: int | None = None,
        coord: bool = False,
    ):
        d1, d2 = (cls(size=size, keys=keys) for cls in self.parts)
        self.data = ConcatDatasetWithIndex([d1, d2])
        self.coord = coord
        if crop_size is not None:
            self.cropper = self.crop_cls(crop_size, crop_size)
            if coord:
                self.cropper = albu.Compose([self.cropper], additional_targets={"coord": "image"})

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        ex, y = self.data[i]
        if hasattr(self, "cropper"):
            if not self.coord:
                ex["image"] = self.cropper(image=ex["image"])["image"]
            else:
                h, w = ex["image"].shape[:2]
                coord = np.arange(h * w).reshape(h, w, 1) / (h * w)  # (h, w, 1) float64
                out = self.cropper(image=ex["image"], coord=coord)
                ex["image"], ex["coord"] = out["image"], out["coord"]
        ex["class"] = y
        return ex


class FacesHQTrain(_FacesHQ):
    """CelebA-HQ + FFHQ training faces (random crops)."""


class FacesHQValidation(_FacesHQ):
    """CelebA-HQ + FFHQ validation faces (center crops)."""

    parts = (CelebAHQValidation, FFHQValidation)
    crop_cls = albu.CenterCrop
