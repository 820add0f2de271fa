"""Condition and mask files for `taming sample`: label maps, depth maps, images, tokens.

Each reader returns the tensor `sample_images(model, n, cond=...)` takes for the model's cond
stage (one-hot segmentations, depth in [-1, 1], RGB in [-1, 1], layout token lists), resized to
the sample size or cut to multiples of the first stage's factor.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from taming.images import load as load_image
from taming.pipeline.errors import SampleError

logger = logging.getLogger(__name__)


def _resize_float(x: np.ndarray, size: tuple[int, int] | None, method: Any) -> np.ndarray:
    if size is None or x.shape[:2] == tuple(size):
        return x
    img = Image.fromarray(x.astype(np.float32), mode="F")
    return np.asarray(img.resize((size[1], size[0]), method), dtype=np.float32)


def _fit_to_factor(
    arr: np.ndarray, f: int, size: tuple[int, int] | None, what: str
) -> tuple[int, int] | None:
    """The size to resize a condition to: `size`, or its own floored to multiples of `f`."""
    if size is not None:
        return size
    h, w = arr.shape[:2]
    if h % f == 0 and w % f == 0:
        return None
    new = (max(f, h // f * f), max(f, w // f * f))
    logger.info("%s: %dx%d is not a multiple of f=%d; resized to %dx%d", what, h, w, f, *new)
    return new


def load_condition(model: Any, path: str | Path, size: tuple[int, int] | None = None) -> Tensor:
    """Read a condition file for the model's cond stage, as `sample_images` takes it.

    - segmentation cond stage (`VQSegmentationModel`, `n_labels` classes): a label-map PNG
      (mode L/P, one label per pixel), nearest-resized, one-hot `(1, n_labels, H, W)`;
    - depth (a `VQModel` with one input channel): a D-RIN RGBA-float PNG
      (`taming.data.imagenet.load_depth`) or an 8/16-bit grayscale PNG, min-max normalised
      to [-1, 1] like the training data, bilinear-resized, `(1, 1, H, W)`;
    - an RGB image (`VQModel` with 3 input channels, e.g. `__is_first_stage__`): `(1, 3, H,
      W)` in [-1, 1], bicubic-resized;
    - layout tokens (`DummyCondStage`): a `.txt` of integers, `.npy` or `.pt`, `(1, L)`.

    Args:
        model: the transformer model.
        path: the file.
        size: `(H, W)` to resize to (default: the file's size, floored to multiples of `f`).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"condition file not found: {path}")
    kind = model.condition_kind
    if kind == "none":
        raise SampleError("the model is unconditional: it takes no --condition")
    if kind == "class":
        raise SampleError("the model is class-conditional: give --classes, not --condition")
    if kind == "tokens":
        return _load_tokens(path)
    labels, channels = model.condition_labels, model.condition_channels
    if labels is None and channels is None:
        raise SampleError(
            "--condition files are not supported for this cond stage; use the Python API "
            "(sample_images(model, n, cond=tensor))"
        )
    f = model.first_stage_factor
    from taming.data.io import BadImageError

    try:
        if labels is not None:
            return _load_segmentation(path, labels, f, size)
        if channels == 1:
            return _load_depth(path, f, size)
        if channels == 3:
            return _load_rgb(path, f, size)
    except BadImageError as e:
        raise SampleError(f"--condition: {e}") from None
    raise SampleError(f"--condition: a cond stage with {channels} input channels is not supported")


def _load_tokens(path: Path) -> Tensor:
    if path.suffix == ".npy":
        arr = np.load(path)
    elif path.suffix in (".pt", ".pth"):
        arr = torch.load(path, map_location="cpu", weights_only=True)
    else:
        text = path.read_text().replace(",", " ").split()
        try:
            arr = [int(t) for t in text]
        except ValueError as e:
            raise SampleError(f"--condition {path}: expected integer tokens ({e})") from None
    t = torch.as_tensor(arr).long()
    return t.reshape(1, -1) if t.ndim <= 1 else t


def _load_segmentation(path: Path, n_labels: int, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.segmentation import load_label_map

    labels = load_label_map(str(path))  # (H, W) uint8
    size = _fit_to_factor(labels, f, size, str(path))
    if size is not None:
        img = Image.fromarray(labels, mode="L").resize((size[1], size[0]), Image.Resampling.NEAREST)
        labels = np.asarray(img)
    top = int(labels.max())
    if top >= n_labels:
        raise SampleError(
            f"--condition {path}: label {top} >= n_labels={n_labels} of the segmentation cond stage"
        )
    onehot = np.eye(n_labels, dtype=np.float32)[labels]  # (H, W, n_labels)
    return torch.from_numpy(onehot).permute(2, 0, 1)[None].contiguous()


def _load_depth(path: Path, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.imagenet import load_depth

    with Image.open(path) as img:
        mode = img.mode
        if mode == "RGBA":
            depth = None
        else:
            if mode not in ("L", "I;16", "I;16B", "I;16L", "I", "F"):
                raise SampleError(
                    f"--condition {path}: a depth map is an RGBA-float or grayscale PNG, "
                    f"got mode {mode}"
                )
            depth = np.asarray(img, dtype=np.float64)
    if depth is None:
        depth = load_depth(str(path))  # (H, W) in [-1, 1]
    else:
        lo, hi = float(depth.min()), float(depth.max())
        depth = (2.0 * (depth - lo) / max(hi - lo, 1e-8) - 1.0).astype(np.float32)
    size = _fit_to_factor(depth, f, size, str(path))
    depth = np.clip(_resize_float(depth, size, Image.Resampling.BILINEAR), -1.0, 1.0)
    return torch.from_numpy(np.ascontiguousarray(depth))[None, None]


def _load_rgb(path: Path, f: int, size: tuple[int, int] | None) -> Tensor:
    from taming.data.io import load_image

    img = load_image(str(path))
    arr = np.asarray(img)
    size = _fit_to_factor(arr, f, size, str(path))
    if size is not None:
        img = img.resize((size[1], size[0]), Image.Resampling.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # (H, W, 3)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()


def load_image_tensor(path: str | Path, f: int, size: tuple[int, int] | None = None) -> Tensor:
    """An RGB image file as `(1, 3, H, W)` in [-1, 1]: `size` (center crop), or its own size
    cut to multiples of `f` (`taming.images.load`)."""
    from taming.data.io import BadImageError

    try:
        return load_image(path, size=size, multiple_of=f)
    except BadImageError as e:
        raise SampleError(str(e)) from None


def load_mask(path: str | Path) -> Tensor:
    """A mask PNG as a float `(H, W)` map in [0, 1] (white = keep)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"mask not found: {path}")
    with Image.open(path) as img:
        arr = np.asarray(img.convert("L"), dtype=np.float32) / 255.0
    return torch.from_numpy(arr)
