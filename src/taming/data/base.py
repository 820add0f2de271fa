"""Base image datasets of the original `taming/data/base.py`: ImagePaths, NumpyPaths and
ConcatDatasetWithIndex.

`ImagePaths(paths, size=None, random_crop=False, labels=None)` keeps the original semantics:
the file is opened with PIL and converted with `convert("RGB")` (no EXIF rotation), then
albumentations' `Compose([SmallestMaxSize(size), CenterCrop | RandomCrop(size)])` as in
`taming.data.albu` (OpenCV bilinear when installed: the original's pixels), no flip; example =
`{"image": float32 (H, W, 3) in [-1, 1], <label>: labels[label][i], ..., "file_path_": path}`.
`NumpyPaths` reads CelebA-HQ's `(1, 3, H, W)` uint8 `.npy` files instead.

Additions (keyword arguments whose defaults keep the original behaviour): `random_flip`,
`interpolation`, `exif_transpose`, `original_convert` (False: alpha composited on white, 16-bit
modes rescaled, see `taming.data.io`), and skipping of unreadable files
(`taming.data.io.BadFileTracker`: the next readable example is returned, one warning per bad
file, `num_skipped` counts them across DataLoader workers).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import ConcatDataset, Dataset

from taming.data import albu
from taming.data.io import BadFileTracker, BadImageError, check_pixels, load_image
from taming.data.transforms import to_float_image

logger = logging.getLogger(__name__)

__all__ = ["ConcatDatasetWithIndex", "ImagePaths", "NumpyPaths", "make_preprocessor"]


def _decode_rgb(path: str) -> np.ndarray:
    """`np.array(Image.open(path).convert("RGB"))` (the original), errors as `BadImageError`."""
    try:
        with Image.open(path) as img:
            check_pixels(img, path)
            img.load()  # truncated files fail here
            arr = np.array(img if img.mode == "RGB" else img.convert("RGB"), dtype=np.uint8)
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except BadImageError:
        raise
    except Exception as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e
    if arr.ndim != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise BadImageError(path, f"empty image {arr.shape}")
    return arr


def make_preprocessor(
    size: int | None,
    random_crop: bool = False,
    random_flip: bool = False,
    interpolation: str = "bilinear",
    additional_targets: dict[str, str] | None = None,
) -> albu.Compose | None:
    """`SmallestMaxSize(size)` + center/random crop (+ flip), or None without a size."""
    if size is None or size <= 0:
        return None
    steps: list = [albu.SmallestMaxSize(size, interpolation)]
    steps.append(albu.RandomCrop(size, size) if random_crop else albu.CenterCrop(size, size))
    if random_flip:
        steps.append(albu.HorizontalFlip())
    return albu.Compose(steps, additional_targets=additional_targets)


class ImagePaths(Dataset):
    """Images from a list of file paths, resized and cropped to squares.

    Args:
        paths: image files (kept as given in `file_path_`).
        size: shortest side and crop size; None or <= 0 keeps the images as they are.
        random_crop: random instead of center crop.
        labels: extra per-example values, `{key: sequence of len(paths)}`, returned as is.
        random_flip: mirror left-right with probability 0.5 (not in the original).
        interpolation: resize filter (nearest, bilinear, bicubic, area, lanczos); the original
            used bilinear.
        exif_transpose: apply the EXIF orientation (the original did not).
        original_convert: convert modes as the original (`convert("RGB")`).
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
        exif_transpose: bool = False,
        original_convert: bool = True,
    ):
        self.paths = list(paths)
        self.size = size if size is not None and size > 0 else None
        self.random_crop = random_crop
        self.random_flip = random_flip
        self.interpolation = interpolation
        self.exif_transpose = exif_transpose
        self.original_convert = original_convert
        self.preprocessor = make_preprocessor(self.size, random_crop, random_flip, interpolation)
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
        return [str(self.paths[i]) for i in self._tracker.bad_indices]

    def load_array(self, image_path: str) -> np.ndarray:
        """The decoded uint8 (H, W, 3) image.

        Raises:
            BadImageError: the file cannot be read.
        """
        if self.original_convert and not self.exif_transpose:
            return _decode_rgb(image_path)
        img = load_image(
            image_path,
            exif_transpose=self.exif_transpose,
            original_convert=self.original_convert,
        )
        return np.asarray(img, dtype=np.uint8)

    def preprocess_image(self, image_path: str) -> np.ndarray:
        """Load, resize, crop (and maybe flip) one image -> float32 (H, W, 3) in [-1, 1].

        Raises:
            BadImageError: the file cannot be read or is smaller than a crop without resize.
        """
        image = self.load_array(image_path)
        if self.preprocessor is not None:
            image = self.preprocessor(image=image)["image"]
        return to_float_image(image)

    def _load_example(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {"image": self.preprocess_image(self.paths[i])}
        for key, values in self.labels.items():
            example[key] = values[i]
        return example

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class NumpyPaths(ImagePaths):
    """`ImagePaths` over `.npy` files of shape (1, 3, H, W) uint8 (the CelebA-HQ format)."""

    def load_array(self, image_path: str) -> np.ndarray:
        try:
            arr = np.load(image_path)
        except FileNotFoundError:
            raise BadImageError(image_path, "file not found") from None
        except Exception as e:
            raise BadImageError(image_path, f"{type(e).__name__}: {e}") from e
        if arr.ndim == 4 and arr.shape[0] == 1:
            arr = arr[0]
        if arr.ndim != 3 or arr.shape[0] != 3 or arr.dtype != np.uint8:
            raise BadImageError(
                image_path, f"expected a (1, 3, H, W) uint8 array, got {arr.dtype} {arr.shape}"
            )
        return np.ascontiguousarray(np.transpose(arr, (1, 2, 0)))  # (H, W, 3)


class ConcatDatasetWithIndex(ConcatDataset):
    """`ConcatDataset` whose items are `(example, index of the dataset it came from)`."""

    def __getitem__(self, idx: int) -> tuple[Any, int]:
        if idx < 0:
            if -idx > len(self):
                raise ValueError("absolute value of index should not exceed dataset length")
            idx = len(self) + idx
        dataset_idx = int(np.searchsorted(self.cumulative_sizes, idx, side="right"))
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return self.datasets[dataset_idx][sample_idx], dataset_idx
