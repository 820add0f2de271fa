"""Images paired with semantic label maps (original `SegmentationBase`, `taming/data/sflckr.py`).

`SegmentationBase(data_csv, data_root, segmentation_root, size=None, random_crop=False,
interpolation="bicubic", n_labels=182, shift_segmentation=False)`:

- `data_csv` lists image paths relative to `data_root`; the label map of `a/b.jpg` is
  `segmentation_root/a/b.png` (a single-channel 8-bit PNG, mode "L"; "P" is read as indices).
- With `size`: the image is resized (shortest side -> size) with `interpolation`, the label map
  with nearest neighbour to the same dimensions, then both get the same center/random crop.
- `shift_segmentation` adds 1 in uint8 (COCO-Stuff: 255 "unlabeled" wraps to 0).
- `segmentation` is one-hot **float32** `(H, W, n_labels)` (the original: float64 from
  `np.eye`; float32 is what the model consumes anyway).

Keys: `relative_file_path_`, `file_path_`, `segmentation_path_`, `image` (float32 (H, W, 3) in
[-1, 1]), `segmentation`. Images are read without applying the EXIF orientation, so they stay
aligned with their label maps. Unreadable or mismatched pairs are skipped (next example, one
warning); a label >= `n_labels` raises `ValueError` (a wrong `n_labels` is a config error).
"""

from __future__ import annotations

import logging
import os
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data.io import BadFileTracker, BadImageError, load_image
from taming.data.transforms import (
    crop_box,
    resampling,
    shortest_side_size,
    to_float_image,
)

logger = logging.getLogger(__name__)

__all__ = ["SegmentationBase", "load_label_map"]


def load_label_map(path: str) -> np.ndarray:
    """Read a label-map PNG as uint8 (H, W).

    Raises:
        BadImageError: unreadable, or not a single-channel 8-bit image.
    """
    try:
        with Image.open(path) as img:
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
        self.interpolation = interpolation
        self._resample = resampling(interpolation)
        self.n_labels = n_labels
        self.shift_segmentation = shift_segmentation
        self._eye = np.eye(n_labels, dtype=np.float32)  # (n_labels, n_labels)
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
        img = load_image(example["file_path_"], exif_transpose=False)
        seg_path = example["segmentation_path_"]
        mask = load_label_map(seg_path)  # (H, W) uint8
        if mask.shape != (img.height, img.width):
            raise BadImageError(
                seg_path,
                f"label map is {mask.shape[1]}x{mask.shape[0]}, image {img.width}x{img.height}",
            )
        if self.shift_segmentation:
            mask = (mask + 1).astype(np.uint8)  # uint8 wrap-around: 255 -> 0
        if self.size is not None:
            new = shortest_side_size(img.width, img.height, self.size)
            box = crop_box(new[0], new[1], self.size, self.random_crop)
            img = img.resize(new, self._resample).crop(box)
            seg = Image.fromarray(mask, mode="L").resize(new, Image.Resampling.NEAREST)
            mask = np.asarray(seg.crop(box))
        top = int(mask.max())
        if top >= self.n_labels:
            raise ValueError(f"{seg_path}: label {top} >= n_labels={self.n_labels}")
        example["image"] = to_float_image(np.asarray(img))  # (H, W, 3)
        example["segmentation"] = self._eye[mask]  # (H, W, n_labels) one-hot
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
