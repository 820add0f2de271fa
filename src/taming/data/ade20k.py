"""ADE20K with label maps and scene categories (original `taming/data/ade20k.py`).

- `Examples(size=256, random_crop=False, interpolation="bicubic", root="data")`: the 30
  shipped validation examples (`<root>/ade20k_examples.txt`, `ade20k_images/*.jpg`,
  `ade20k_segmentations/*.png`), 151 labels (0 = other), no shift.
- `ADE20kTrain(config=None, size=None, random_crop=True, interpolation="bicubic",
  crop_size=None)` / `ADE20kValidation(..., random_crop=False, ...)`: the full
  ADEChallengeData2016 in `data/ade20k_root` (the zip's `images/{training,validation}/*.jpg`,
  `annotations/{training,validation}/*.png`, `sceneCategories.txt`), lists
  `data/ade20k_train.txt` / `data/ade20k_test.txt` (lines like `training/ADE_train_00000001.jpg`;
  the original did not ship them: when a list is missing, or for another `root` without a
  `data_csv`, the sorted `.jpg` files of the split folder are used). `root` and `data_csv`
  (ours) point elsewhere. Image: `SmallestMaxSize(size)`
  with `interpolation` (OpenCV), label map with nearest, then the same `crop_size` crop
  (default `size`; center for validation, random for training). Fixed here: the original built
  its cropper only when `crop_size` was passed explicitly and failed otherwise.
  Keys: `relative_file_path_`, `file_path_`, `relative_segmentation_path_`,
  `segmentation_path_`, `scene_category`, `image` (float32 (H, W, 3) in [-1, 1]),
  `segmentation` (float64 one-hot (H, W, 151)).
"""

from __future__ import annotations

import os
from typing import Any

from torch.utils.data import Dataset

from taming.data import albu
from taming.data.cvresize import check_interpolation
from taming.data.io import BadFileTracker
from taming.data.segmentation import ShippedExamples, check_labels, load_pair, one_hot
from taming.data.transforms import to_float_image

__all__ = ["ADE20kBase", "ADE20kTrain", "ADE20kValidation", "Examples"]

N_LABELS = 151  # 0 = other + 150 classes
SPLIT_FOLDERS = {"train": "training", "validation": "validation"}
DEFAULT_LISTS = {"train": "data/ade20k_train.txt", "validation": "data/ade20k_test.txt"}


class Examples(ShippedExamples):
    """The shipped ADE20K examples (arguments: `ShippedExamples`)."""

    name, n_labels, shift_segmentation = "ade20k", N_LABELS, False


def _read_scene_categories(path: str) -> dict[str, str]:
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ADE20K: {path} not found; expected the contents of ADEChallengeData2016.zip "
            "(images/, annotations/, sceneCategories.txt) in the root folder"
        )
    with open(path, encoding="utf-8") as f:
        return dict(line.split(maxsplit=1) for line in f.read().splitlines() if line.strip())


def _split_files(root: str, split: str) -> list[str]:
    folder = os.path.join(root, "images", SPLIT_FOLDERS[split])
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"ADE20K: no image list and no folder {folder}; expected ADEChallengeData2016 "
            "(images/{training,validation}/*.jpg, annotations/..., sceneCategories.txt)"
        )
    names = sorted(n for n in os.listdir(folder) if n.endswith(".jpg"))
    return [f"{SPLIT_FOLDERS[split]}/{n}" for n in names]


class ADE20kBase(Dataset):
    """ADE20K scene parsing (see the module docstring); subclasses set `split`.

    Args:
        config: unused (kept for the original signature).
        size: shortest side after resizing; None or <= 0 keeps the original resolution.
        random_crop: random instead of center crop.
        interpolation: image filter (nearest, bilinear, bicubic, area, lanczos).
        crop_size: crop side (default: `size`).
        root: dataset folder (default: the original's `data/ade20k_root`).
        data_csv: image list (default: `data/ade20k_train.txt` / `data/ade20k_test.txt`).
    """

    split = "train"

    def __init__(
        self,
        config: Any = None,
        size: int | None = None,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        crop_size: int | None = None,
        root: str = "data/ade20k_root",
        data_csv: str | None = None,
    ):
        self.n_labels = N_LABELS
        self.data_root = root
        self.scene_categories = _read_scene_categories(os.path.join(root, "sceneCategories.txt"))
        if data_csv is None and root == "data/ade20k_root":
            data_csv = DEFAULT_LISTS[self.split]  # the original's lists, when they exist
        if data_csv and os.path.isfile(data_csv):
            with open(data_csv, encoding="utf-8") as f:
                self.image_paths = [ln for ln in f.read().splitlines() if ln.strip()]
        else:
            self.image_paths = _split_files(root, self.split)
        if not self.image_paths:
            raise ValueError(f"ADE20K {self.split}: no images in {data_csv} or {root}/images")
        self.data_csv = data_csv
        stems = [p.split("/")[-1].replace(".jpg", "") for p in self.image_paths]
        missing = [s for s in stems if s not in self.scene_categories]
        if missing:
            raise ValueError(f"ADE20K: {missing[0]} has no entry in {root}/sceneCategories.txt")
        self.labels: dict[str, list[str]] = {
            "relative_file_path_": list(self.image_paths),
            "file_path_": [os.path.join(root, "images", p) for p in self.image_paths],
            "relative_segmentation_path_": [p.replace(".jpg", ".png") for p in self.image_paths],
            "segmentation_path_": [
                os.path.join(root, "annotations", p.replace(".jpg", ".png"))
                for p in self.image_paths
            ],
            "scene_category": [self.scene_categories[s] for s in stems],
        }
        self.size = size if size is not None and size > 0 else None
        self.crop_size = crop_size if crop_size is not None else self.size
        self.interpolation = check_interpolation(interpolation)
        self.random_crop = random_crop
        if self.size is not None:
            self.image_rescaler = albu.SmallestMaxSize(self.size, interpolation)
            self.segmentation_rescaler = albu.SmallestMaxSize(self.size, "nearest")
        if self.crop_size is not None:
            cls = albu.RandomCrop if random_crop else albu.CenterCrop
            self.cropper = cls(self.crop_size, self.crop_size)
        self._tracker = BadFileTracker(len(self.image_paths), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def num_skipped(self) -> int:
        return self._tracker.num_skipped

    def _load_example(self, i: int) -> dict[str, Any]:
        example: dict[str, Any] = {k: v[i] for k, v in self.labels.items()}
        image, mask = load_pair(example["file_path_"], example["segmentation_path_"])
        if self.size is not None:
            image = self.image_rescaler(image=image)["image"]
            mask = self.segmentation_rescaler(image=mask)["image"]
        if self.size is not None:  # as the original: crop only together with a resize
            out = self.cropper(image=image, mask=mask)
            image, mask = out["image"], out["mask"]
        check_labels(mask, self.n_labels, example["segmentation_path_"])
        example["image"] = to_float_image(image)
        example["segmentation"] = one_hot(mask, self.n_labels)
        return example

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class ADE20kTrain(ADE20kBase):
    """ADE20K training split (random crops by default)."""

    split = "train"

    def __init__(
        self,
        config: Any = None,
        size: int | None = None,
        random_crop: bool = True,
        interpolation: str = "bicubic",
        crop_size: int | None = None,
        root: str = "data/ade20k_root",
        data_csv: str | None = None,
    ):
        super().__init__(config, size, random_crop, interpolation, crop_size, root, data_csv)


class ADE20kValidation(ADE20kBase):
    """ADE20K validation split (center crops)."""

    split = "validation"
