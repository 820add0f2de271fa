"""ImageNet images with depth maps (original `taming/data/imagenet.py`, depth part; D-RIN).

Depth maps are RGBA PNGs whose 4 bytes per pixel are one little-endian float32
(`rgba_to_depth`), normalised per image to [0, 1] (range guarded by 1e-8) and mapped to
[-1, 1] by `2d - 1` (`load_depth`).

- `BaseWithDepth(config=None, size=None, random_crop=False, crop_size=None, root=None)`: the
  base ImageNet set at full resolution (float32 image), the depth of `relpath` from
  `<root>/{train,val}/<wnid>/<name>.png` (default root `data/imagenet_depth`). If `crop_size`
  is set and the image is smaller, both are upscaled (`SmallestMaxSize(crop_size)`, bilinear).
  Then jointly (`additional_targets={"depth": "image"}`, OpenCV bilinear on the float arrays):
  `SmallestMaxSize(size)` + `RandomCrop` + `HorizontalFlip(p=0.5)` (random_crop) or
  `CenterCrop`; only the crop when `size` is None and `crop_size` is set. Keys: the ImageNet
  keys + `depth` (float32 (H, W) in [-1, 1]).
- `ImageNetTrainWithDepth(random_crop=True, sub_indices=None, **kw)`,
  `ImageNetValidationWithDepth(sub_indices=None, **kw)`; `RINTrainWithDepth` /
  `RINValidationWithDepth(config=None, size=None, random_crop, crop_size=None)`: the 194
  "restricted ImageNet" animal classes of D-RIN (`RIN_SUB_INDICES`).
- `DRINExamples(size=256, root="data")`: the 25 shipped examples (`<root>/drin_examples.txt`,
  `drin_images/<wnid>/*.JPEG`, `drin_depth/<wnid>/*.png`); the image is resized and
  center-cropped to `size`, then image and depth jointly (the depth gets its own resize + crop,
  as in the original). Keys `image`, `depth`.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data import albu
from taming.data.imagenet import ImageNetTrain, ImageNetValidation
from taming.data.io import BadFileTracker, BadImageError, check_pixels, load_image
from taming.data.transforms import to_float_image

__all__ = [
    "RIN_SUB_INDICES",
    "BaseWithDepth",
    "DRINExamples",
    "ImageNetTrainWithDepth",
    "ImageNetValidationWithDepth",
    "RINTrainWithDepth",
    "RINValidationWithDepth",
    "get_preprocessor",
    "load_depth",
    "rgba_to_depth",
]

RIN_SUB_INDICES = "30-32, 33-37, 151-268, 281-285, 80-100, 365-382, 389-397, 118-121, 300-319"


def get_preprocessor(
    size: int | None = None,
    random_crop: bool = False,
    additional_targets: dict[str, str] | None = None,
    crop_size: int | None = None,
):
    """The original's joint preprocessor (see the module docstring); identity without sizes."""
    if size is not None and size > 0:
        steps: list = [albu.SmallestMaxSize(size)]
        if random_crop:
            steps += [albu.RandomCrop(size, size), albu.HorizontalFlip()]
        else:
            steps.append(albu.CenterCrop(size, size))
        return albu.Compose(steps, additional_targets=additional_targets)
    if crop_size is not None and crop_size > 0:
        crop = albu.RandomCrop if random_crop else albu.CenterCrop
        return albu.Compose([crop(crop_size, crop_size)], additional_targets=additional_targets)
    return lambda **kwargs: kwargs


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
            check_pixels(img, path)
            img.load()
            if img.mode != "RGBA":
                raise BadImageError(
                    path, f"depth PNG must be RGBA (packed float32), got {img.mode}"
                )
            rgba = np.array(img, dtype=np.uint8)  # (H, W, 4)
    except BadImageError:
        raise
    except FileNotFoundError:
        raise BadImageError(path, "depth map not found") from None
    except Exception as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e
    depth = rgba_to_depth(rgba)  # (H, W)
    if not np.isfinite(depth).all():
        raise BadImageError(path, "depth map contains NaN or infinite values")
    depth = (depth - depth.min()) / max(1e-8, depth.max() - depth.min())
    return (2.0 * depth - 1.0).astype(np.float32)


def _check_same_size(image: np.ndarray, depth: np.ndarray, path: str) -> None:
    if image.shape[:2] != depth.shape[:2]:
        raise BadImageError(
            path,
            f"depth map is {depth.shape[1]}x{depth.shape[0]}, image "
            f"{image.shape[1]}x{image.shape[0]}",
        )


class BaseWithDepth(Dataset):
    """ImageNet + depth (see the module docstring); subclasses give the base set and paths."""

    DEFAULT_DEPTH_ROOT = "data/imagenet_depth"
    depth_split = "train"

    def __init__(
        self,
        config: Any = None,
        size: int | None = None,
        random_crop: bool = False,
        crop_size: int | None = None,
        root: str | None = None,
    ):
        self.config = config
        self.base_dset = self.get_base_dset()
        self.preprocessor = get_preprocessor(
            size=size,
            crop_size=crop_size,
            random_crop=random_crop,
            additional_targets={"depth": "image"},
        )
        self.crop_size = crop_size
        if crop_size is not None:
            self.rescaler = albu.Compose(
                [albu.SmallestMaxSize(crop_size)], additional_targets={"depth": "image"}
            )
        self.depth_root = root if root is not None else self.DEFAULT_DEPTH_ROOT
        self._tracker = BadFileTracker(len(self.base_dset), name=type(self).__name__)

    def get_base_dset(self) -> Dataset:
        raise NotImplementedError  # abstract: ImageNetTrainWithDepth / ...ValidationWithDepth

    def get_depth_path(self, e: dict[str, Any]) -> str:
        fid = os.path.splitext(str(e["relpath"]))[0] + ".png"
        return os.path.join(self.depth_root, self.depth_split, fid)

    def __len__(self) -> int:
        return len(self.base_dset)

    @property
    def num_skipped(self) -> int:
        return self._tracker.num_skipped

    def _load_example(self, i: int) -> dict[str, Any]:
        e = dict(self.base_dset[i])
        path = self.get_depth_path(e)
        e["depth"] = load_depth(path)
        _check_same_size(e["image"], e["depth"], path)
        h, w = e["image"].shape[:2]
        if self.crop_size and min(h, w) < self.crop_size:
            out = self.rescaler(image=e["image"], depth=e["depth"])
            e["image"], e["depth"] = out["image"], out["depth"]
        out = self.preprocessor(image=e["image"], depth=e["depth"])
        e["image"], e["depth"] = out["image"], out["depth"]
        return e

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class ImageNetTrainWithDepth(BaseWithDepth):
    """ImageNet train + depth (random crop and flip by default)."""

    depth_split = "train"

    def __init__(self, random_crop: bool = True, sub_indices: str | None = None, **kwargs: Any):
        self.sub_indices = sub_indices
        super().__init__(random_crop=random_crop, **kwargs)

    def get_base_dset(self) -> Dataset:
        config = {} if self.sub_indices is None else {"sub_indices": self.sub_indices}
        return ImageNetTrain(config)


class ImageNetValidationWithDepth(BaseWithDepth):
    """ImageNet validation + depth (center crop by default)."""

    depth_split = "val"

    def __init__(self, sub_indices: str | None = None, **kwargs: Any):
        self.sub_indices = sub_indices
        super().__init__(**kwargs)

    def get_base_dset(self) -> Dataset:
        config = {} if self.sub_indices is None else {"sub_indices": self.sub_indices}
        return ImageNetValidation(config)


class RINTrainWithDepth(ImageNetTrainWithDepth):
    """D-RIN train: the restricted-ImageNet animal classes with depth."""

    def __init__(
        self,
        config: Any = None,
        size: int | None = None,
        random_crop: bool = True,
        crop_size: int | None = None,
        root: str | None = None,
    ):
        super().__init__(
            config=config,
            size=size,
            random_crop=random_crop,
            sub_indices=RIN_SUB_INDICES,
            crop_size=crop_size,
            root=root,
        )


class RINValidationWithDepth(ImageNetValidationWithDepth):
    """D-RIN validation: the restricted-ImageNet animal classes with depth."""

    def __init__(
        self,
        config: Any = None,
        size: int | None = None,
        random_crop: bool = False,
        crop_size: int | None = None,
        root: str | None = None,
    ):
        super().__init__(
            config=config,
            size=size,
            random_crop=random_crop,
            sub_indices=RIN_SUB_INDICES,
            crop_size=crop_size,
            root=root,
        )


class DRINExamples(Dataset):
    """The shipped D-RIN examples: ImageNet validation images with their depth maps.

    Args:
        size: shortest side and center-crop size (the original: 256).
        root: folder holding the original project's `data/` files.
    """

    def __init__(self, size: int = 256, root: str = "data"):
        list_file = os.path.join(root, "drin_examples.txt")
        if not os.path.isfile(list_file):
            raise FileNotFoundError(
                f"D-RIN example list not found: {list_file} (expected the original's data/ "
                "folder: drin_examples.txt, drin_images/, drin_depth/)"
            )
        with open(list_file, encoding="utf-8") as f:
            relpaths = [line for line in f.read().splitlines() if line.strip()]
        if not relpaths:
            raise ValueError(f"{list_file} lists no examples")
        self.size = size
        self.root = root
        self.preprocessor = get_preprocessor(size=size, additional_targets={"depth": "image"})
        self.image_paths = [os.path.join(root, "drin_images", p) for p in relpaths]
        self.depth_paths = [
            os.path.join(root, "drin_depth", p.replace(".JPEG", ".png")) for p in relpaths
        ]
        self._tracker = BadFileTracker(len(relpaths), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.image_paths)

    @property
    def num_skipped(self) -> int:
        """Distinct unreadable examples skipped so far (summed over DataLoader workers)."""
        return self._tracker.num_skipped

    def _load_example(self, i: int) -> dict[str, Any]:
        img = load_image(self.image_paths[i], exif_transpose=False, original_convert=True)
        image = np.asarray(img, dtype=np.uint8)
        depth = load_depth(self.depth_paths[i])
        _check_same_size(image, depth, self.depth_paths[i])
        image = to_float_image(self.preprocessor(image=image)["image"])
        out = self.preprocessor(image=image, depth=depth)
        return {"image": out["image"], "depth": out["depth"]}

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)
