"""ImageNet super-resolution and edge variants (original `taming/data/imagenet.py`, last part).

- `imscale(x, factor, keepshapes=False, keepmode="bicubic")`: a float image in [-1, 1] goes to
  uint8 (`((x + 1) * 127.5).clip(0, 255)`, truncated), is downscaled by `factor` with PIL
  bicubic (`(W // f, H // f)`), optionally resized back with `keepmode` (nearest, bilinear,
  bicubic), and returned in [-1, 1] with the input dtype.
- `ImageNetScale(size=None, crop_size=None, random_crop=False, up_factor=None, hr_factor=None,
  keep_mode="bicubic")` (+ `ImageNetScaleTrain` with random crops, `ImageNetScaleValidation`):
  the full-resolution ImageNet image, optionally downscaled by `hr_factor`; images smaller than
  `crop_size` are upscaled first; with `up_factor` the degraded input `lr` (downscale by
  `up_factor`, back to the size with `keep_mode`) is cropped together with `image`
  (`SmallestMaxSize(size)` + center/random `crop_size` crop, as albumentations).
- `ImageNetEdges(+Train/Validation)`: `lr` = Canny edges of the grey image
  (`skimage.feature.canny(rgb2gray(image), sigma=2)`, float32, repeated to 3 channels); needs
  scikit-image (`pip install scikit-image`).
Keys: the ImageNet keys, `image` and (with a degradation) `lr`, both float32 (H, W, 3).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from PIL import Image
from torch.utils.data import Dataset

from taming.data import albu
from taming.data.imagenet import ImageNetTrain, ImageNetValidation

__all__ = [
    "ImageNetEdges",
    "ImageNetEdgesTrain",
    "ImageNetEdgesValidation",
    "ImageNetScale",
    "ImageNetScaleTrain",
    "ImageNetScaleValidation",
    "imscale",
]

_KEEP_MODES = {
    "nearest": Image.Resampling.NEAREST,
    "bilinear": Image.Resampling.BILINEAR,
    "bicubic": Image.Resampling.BICUBIC,
}


def imscale(
    x: np.ndarray, factor: int | None, keepshapes: bool = False, keepmode: str = "bicubic"
) -> np.ndarray:
    """Downscale (and optionally re-upscale) a [-1, 1] float image by an integer factor."""
    if factor is None or factor == 1:
        return x
    if x.dtype not in (np.float32, np.float64):
        raise ValueError(f"imscale expects a float image, got {x.dtype}")
    if keepmode not in _KEEP_MODES:
        raise ValueError(f"keep_mode must be one of {', '.join(_KEEP_MODES)}, got {keepmode}")
    lr = Image.fromarray(((x + 1.0) * 127.5).clip(0, 255).astype(np.uint8))
    h, w = x.shape[:2]
    nh, nw = h // factor, w // factor
    if nh <= 0 or nw <= 0:
        raise ValueError(f"cannot downscale a {w}x{h} image by {factor}")
    lr = lr.resize((nw, nh), Image.Resampling.BICUBIC)
    if keepshapes:
        lr = lr.resize((w, h), _KEEP_MODES[keepmode])
    return (np.array(lr) / 127.5 - 1.0).astype(x.dtype)


class ImageNetScale(Dataset):
    """ImageNet at a scale, with an optional low-resolution input `lr` (module docstring)."""

    def __init__(
        self,
        size: int | None = None,
        crop_size: int | None = None,
        random_crop: bool = False,
        up_factor: int | None = None,
        hr_factor: int | None = None,
        keep_mode: str = "bicubic",
    ):
        if keep_mode not in _KEEP_MODES:
            raise ValueError(f"keep_mode must be one of {', '.join(_KEEP_MODES)}, got {keep_mode}")
        self.base = self.get_base()
        self.size = size
        self.crop_size = crop_size if crop_size is not None else size
        self.random_crop = random_crop
        self.up_factor = up_factor
        self.hr_factor = hr_factor
        self.keep_mode = keep_mode
        steps: list = []
        if size is not None and size > 0:
            self.rescaler = albu.SmallestMaxSize(size)
            steps.append(self.rescaler)
        if self.crop_size is not None and self.crop_size > 0:
            if not steps:
                self.rescaler = albu.SmallestMaxSize(self.crop_size)
            crop = albu.RandomCrop if random_crop else albu.CenterCrop
            steps.append(crop(self.crop_size, self.crop_size))
        if steps:
            extra = {"lr": "image"} if self.up_factor is not None else None
            self.preprocessor = albu.Compose(steps, additional_targets=extra)
        else:
            self.preprocessor = lambda **kwargs: kwargs

    def get_base(self) -> Dataset:
        return ImageNetTrain()

    def __len__(self) -> int:
        return len(self.base)

    def _upscale_if_small(self, image: np.ndarray) -> np.ndarray:
        h, w = image.shape[:2]
        if self.crop_size and min(h, w) < self.crop_size:
            return self.rescaler(image=image)["image"]
        return image

    def __getitem__(self, i: int) -> dict[str, Any]:
        example = dict(self.base[i])
        image = imscale(example["image"], self.hr_factor, keepshapes=False)
        image = self._upscale_if_small(image)
        if self.up_factor is None:
            example["image"] = self.preprocessor(image=image)["image"]
            return example
        lr = imscale(image, self.up_factor, keepshapes=True, keepmode=self.keep_mode)
        out = self.preprocessor(image=image, lr=lr)
        example["image"], example["lr"] = out["image"], out["lr"]
        return example


class ImageNetScaleTrain(ImageNetScale):
    """`ImageNetScale` over ImageNet train (random crops by default)."""

    def __init__(self, random_crop: bool = True, **kwargs: Any):
        super().__init__(random_crop=random_crop, **kwargs)


class ImageNetScaleValidation(ImageNetScale):
    """`ImageNetScale` over ImageNet validation."""

    def get_base(self) -> Dataset:
        return ImageNetValidation()


class ImageNetEdges(ImageNetScale):
    """ImageNet with Canny edges as `lr` (needs scikit-image)."""

    def __init__(self, up_factor: int = 1, **kwargs: Any):
        try:
            from skimage.color import rgb2gray
            from skimage.feature import canny
        except ImportError as e:
            raise ImportError(
                "taming.data.imagenet.ImageNetEdges needs scikit-image: pip install scikit-image"
            ) from e
        self._canny, self._rgb2gray = canny, rgb2gray
        super().__init__(up_factor=1, **kwargs)

    def __getitem__(self, i: int) -> dict[str, Any]:
        example = dict(self.base[i])
        image = self._upscale_if_small(example["image"])
        lr = self._canny(self._rgb2gray(image), sigma=2).astype(np.float32)
        lr = lr[:, :, None][:, :, [0, 0, 0]]  # (H, W, 3)
        out = self.preprocessor(image=image, lr=lr)
        example["image"], example["lr"] = out["image"], out["lr"]
        return example


class ImageNetEdgesTrain(ImageNetEdges):
    """`ImageNetEdges` over ImageNet train (random crops by default)."""

    def __init__(self, random_crop: bool = True, **kwargs: Any):
        super().__init__(random_crop=random_crop, **kwargs)


class ImageNetEdgesValidation(ImageNetEdges):
    """`ImageNetEdges` over ImageNet validation."""

    def get_base(self) -> Dataset:
        return ImageNetValidation()
