"""Images paired with semantic label maps (original `SegmentationBase`, `taming/data/sflckr.py`).

`SegmentationBase(data_csv, data_root, segmentation_root, size=None, random_crop=False,
interpolation="bicubic", n_labels=182, shift_segmentation=False)`, value for value as the
original (albumentations / OpenCV, see `taming.data.albu`):

- `data_csv` lists image paths relative to `data_root`; the label map of `a/b.jpg` is
  `segmentation_root/a/b.png` (a single-channel 8-bit PNG, mode "L"; "P" is read as indices).
- `shift_segmentation` adds 1 in uint8 (COCO-Stuff: 255 "unlabeled" wraps to 0).
- With `size`: the image goes through `SmallestMaxSize(size, interpolation)` (OpenCV filters:
  nearest, bilinear, bicubic, area, lanczos), the label map through `SmallestMaxSize(size)` with
  nearest neighbour (OpenCV's rule), then both get the same `CenterCrop` / `RandomCrop(size)`.
- `segmentation` is one-hot **float64** `(H, W, n_labels)` (`np.eye(n_labels)[labels]`, the
  original's dtype).

Keys: `relative_file_path_`, `file_path_`, `segmentation_path_`, `image` (float32 (H, W, 3) in
[-1, 1]), `segmentation`. Images are read without applying the EXIF orientation, so they stay
aligned with their label maps. Unreadable pairs, a missing label map and a label map whose size
differs from its image are skipped (next example, one warning naming the file); a label
>= `n_labels` raises `ValueError` naming the file (a wrong `n_labels` is a config error).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data import albu
from taming.data.cvresize import check_interpolation
from taming.data.io import BadFileTracker, BadImageError, check_pixels, load_image
from taming.data.transforms import to_float_image

logger = logging.getLogger(__name__)

__all__ = ["SegmentationBase", "ShippedExamples", "check_labels", "load_label_map", "one_hot"]


def load_label_map(path: str) -> np.ndarray:
    """Read a label-map PNG as uint8 (H, W).

    Raises:
        BadImageError: unreadable, or not a single-channel 8-bit image.
    """
    try:
        with Image.open(path) as img:
            check_pixels(img, path)
            img.load()
            if img.mode not in ("L", "P"):
                raise BadImageError(path, f"label map must be 8-bit single-channel, got {img.mode}")
            return np.array(img, dtype=np.uint8)
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except Exception as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e


def check_labels(mask: np.ndarray, n_labels: int, path: str) -> None:
    """Raise `ValueError` naming `path` when a label is >= n_labels."""
    top = int(mask.max()) if mask.size else 0
    if top >= n_labels:
        raise ValueError(f"{path}: label {top} >= n_labels={n_labels}")


def one_hot(mask: np.ndarray, n_labels: int, dtype=np.float64) -> np.ndarray:
    """(H, W) integer labels -> (H, W, n_labels) one-hot (`np.eye(n)[mask]`)."""
    out = np.zeros(mask.shape + (n_labels,), dtype=dtype)
    np.put_along_axis(out, mask[..., None].astype(np.intp), 1, axis=-1)
    return out


def load_pair(image_path: str, seg_path: str) -> tuple[np.ndarray, np.ndarray]:
    """uint8 (H, W, 3) image (original RGB conversion, no EXIF) and (H, W) label map.

    Raises:
        BadImageError: unreadable files or different sizes.
    """
    image = np.asarray(
        load_image(image_path, exif_transpose=False, original_convert=True), dtype=np.uint8
    )
    mask = load_label_map(seg_path)  # (H, W) uint8
    if mask.shape != image.shape[:2]:
        raise BadImageError(
            seg_path,
            f"label map is {mask.shape[1]}x{mask.shape[0]}, image "
            f"{image.shape[1]}x{image.shape[0]} ({image_path})",
        )
    return image, mask


class SegmentationBase(Dataset):
    """Images and one-hot label maps listed in a text file.

    Args:
        data_csv: text file with image paths relative to `data_root`, one per line.
        data_root: folder of the images.
        segmentation_root: folder of the label maps (same relative paths, `.png`).
        size: shortest side and crop size; None keeps the original resolution.
        random_crop: random instead of center crop.
        interpolation: image resize filter (nearest, bilinear, bicubic, area, lanczos).
        n_labels: number of classes (one-hot depth).
        shift_segmentation: add 1 to every label (uint8 wrap-around: 255 -> 0).
    """

    def __init__(
        self,
        data_csv: str,
        data_root: str,
        segmentation_root: str,
        size: int | None = None,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        n_labels: int = 182,
        shift_segmentation: bool = False,
    ):
        if not os.path.isfile(data_csv):
            raise FileNotFoundError(f"example list not found: {data_csv}")
        with open(data_csv, encoding="utf-8") as f:
            self.image_paths = [line.strip() for line in f if line.strip()]
        if not self.image_paths:
            raise ValueError(f"example list {data_csv} is empty")
        self.data_csv = data_csv
        self.data_root = data_root
        self.segmentation_root = segmentation_root
        self.size = size if size is not None and size > 0 else None
        self.random_crop = random_crop
        self.interpolation = check_interpolation(interpolation)
        self.n_labels = n_labels
        self.shift_segmentation = shift_segmentation
        if self.size is not None:
            self.image_rescaler = albu.SmallestMaxSize(self.size, interpolation)
            self.segmentation_rescaler = albu.SmallestMaxSize(self.size, "nearest")
            self.cropper = (
                albu.RandomCrop(self.size, self.size)
                if random_crop
                else albu.CenterCrop(self.size, self.size)
            )
        self.labels: dict[str, list[str]] = {
            "relative_file_path_": list(self.image_paths),
            "file_path_": [os.path.join(data_root, p) for p in self.image_paths],
            "segmentation_path_": [
                os.path.join(segmentation_root, os.path.splitext(p)[0] + ".png")
                for p in self.image_paths
            ],
        }
        self._tracker = BadFileTracker(len(self.image_paths), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def num_skipped(self) -> int:
        """Distinct unreadable examples skipped so far (summed over DataLoader workers)."""
        return self._tracker.num_skipped

    def _load_example(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {k: v[i] for k, v in self.labels.items()}
        image, mask = load_pair(example["file_path_"], example["segmentation_path_"])
        if self.shift_segmentation:
            mask = (mask + 1).astype(np.uint8)  # uint8 wrap-around: 255 -> 0
        if self.size is not None:
            image = self.image_rescaler(image=image)["image"]
            mask = self.segmentation_rescaler(image=mask)["image"]
            out = self.cropper(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        check_labels(mask, self.n_labels, example["segmentation_path_"])
        example["image"] = to_float_image(image)  # (H, W, 3)
        example["segmentation"] = one_hot(mask, self.n_labels)  # (H, W, n_labels)
        return example

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class ShippedExamples(SegmentationBase):
    """Base of the original project's example sets in `<root>/` (ADE20K, COCO-Stuff, S-FLCKR):
    `<root>/<name>_examples.txt`, images in `<root>/<name>_images`, label maps in
    `<root>/<name>_segmentations`. Subclasses set `name`, `n_labels`, `shift_segmentation`.

    Args:
        size: shortest side and crop size; None keeps the original resolution.
        random_crop: random instead of center crop.
        interpolation: image resize filter.
        root: folder holding the original project's `data/` files.
    """

    name: str
    n_labels: int
    shift_segmentation: bool = False

    def __init__(
        self,
        size: int | None = 256,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        root: str = "data",
    ):
        super().__init__(
            data_csv=os.path.join(root, f"{self.name}_examples.txt"),
            data_root=os.path.join(root, f"{self.name}_images"),
            segmentation_root=os.path.join(root, f"{self.name}_segmentations"),
            size=size,
            random_crop=random_crop,
            interpolation=interpolation,
            n_labels=type(self).n_labels,
            shift_segmentation=type(self).shift_segmentation,
        )
