"""Base image datasets of the original `taming/data/base.py`: ImagePaths, ConcatDatasetWithIndex.

`ImagePaths(paths, size=None, random_crop=False, labels=None)` keeps the original semantics:
shortest side -> `size` (bilinear; smaller images are upscaled), then a center or random
`size` x `size` crop, no flip; example = `{"image": float32 (H, W, 3) in [-1, 1],
"file_path_": path, <label>: labels[label][i], ...}`. Additions (keyword arguments with
defaults that keep the original behaviour): `random_flip`, `interpolation`, and skipping of
unreadable files (`taming.data.io.BadFileTracker`: the next readable example is returned,
one warning per bad file, `num_skipped` counts them across DataLoader workers).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Sequence
from typing import Any

import numpy as np
from torch.utils.data import ConcatDataset, Dataset

from taming.data.io import BadFileTracker, load_image
from taming.data.transforms import (
    crop_box,
    hflip,
    resampling,
    resize_shortest_side,
    to_float_image,
)

logger = logging.getLogger(__name__)

__all__ = ["ConcatDatasetWithIndex", "ImagePaths"]


class ImagePaths(Dataset):
    """Images from a list of file paths, resized and cropped to squares.

    Args:
        paths: image files.
        size: shortest side and crop size; None or <= 0 keeps the images as they are.
        random_crop: random instead of center crop.
        labels: extra per-example values, `{key: sequence of len(paths)}`, returned as is.
        random_flip: mirror left-right with probability 0.5 (not in the original).
        interpolation: resize filter (nearest, bilinear, bicubic, area, lanczos); the original
            used bilinear.
    """

    def __init__(
        self,
        paths: Sequence[str],
        size: int | None = None,
        random_crop: bool = False,
        labels: dict[str, Sequence[Any]] | None = None,
        *,
        random_flip: bool = False,
        interpolation: str = "bilinear",
    ):
        self.paths = [str(p) for p in paths]
        self.size = size if size is not None and size > 0 else None
        self.random_crop = random_crop
        self.random_flip = random_flip
        self.interpolation = interpolation
        self._resample = resampling(interpolation)
        self.labels: dict[str, Sequence[Any]] = dict(labels or {})
        for key, values in self.labels.items():
            if len(values) != len(self.paths):
                raise ValueError(
                    f"label '{key}' has {len(values)} values for {len(self.paths)} paths"
                )
        self.labels["file_path_"] = self.paths
        self._tracker = BadFileTracker(len(self.paths), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def num_skipped(self) -> int:
        """Distinct unreadable files skipped so far (summed over DataLoader workers)."""
        return self._tracker.num_skipped

    @property
    def skipped_files(self) -> list[str]:
        """Paths of the unreadable files skipped so far."""
        return [self.paths[i] for i in self._tracker.bad_indices]

    def preprocess_image(self, image_path: str) -> np.ndarray:
        """Load, resize, crop (and maybe flip) one image -> float32 (H, W, 3) in [-1, 1].

        Raises:
            BadImageError: the file cannot be read.
        """
        img = load_image(image_path)
        if self.size is not None:
            img = resize_shortest_side(img, self.size, self._resample)
            img = img.crop(crop_box(img.width, img.height, self.size, self.random_crop))
        arr = np.asarray(img)  # (H, W, 3) uint8
        if self.random_flip and random.random() < 0.5:
            arr = hflip(arr)
        return to_float_image(arr)

    def _load_example(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {"image": self.preprocess_image(self.paths[i])}
        for key, values in self.labels.items():
            example[key] = values[i]
        return example

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class ConcatDatasetWithIndex(ConcatDataset):
    """`ConcatDataset` whose items are `(example, index of the dataset it came from)`."""

    def __getitem__(self, idx: int) -> tuple[Any, int]:
        if idx < 0:
            if -idx > len(self):
                raise IndexError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return self.datasets[dataset_idx][sample_idx], dataset_idx
