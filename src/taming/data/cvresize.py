"""OpenCV's `cv2.resize` semantics for the datasets that the original resized with albumentations.

The original's segmentation, depth, faces and ImageNet sets resize numpy arrays with OpenCV
(through albumentations). To give the same pixels, `resize` calls `cv2.resize` when OpenCV is
installed (`pip install 'taming[data]'`, opencv-python-headless). Without OpenCV it falls back to
numpy / PIL re-implementations:

- `nearest`: OpenCV's rule `src = floor(dst * src_size / dst_size)` (not PIL's pixel-centre rule),
  exact for any dtype;
- `bilinear` on uint8: OpenCV's fixed-point algorithm (11-bit coefficients, its rounding), and
  an exact 2x downscale as OpenCV does it (2x2 box average); float images in float64 with the
  same sampling positions (OpenCV's own float path rounds to float32, differences ~1e-7);
- `bicubic`: OpenCV's cubic convolution (A = -0.75, edge pixels replicated, 11-bit weights);
- `area`: exact box averaging when shrinking both axes, else OpenCV's sharpened linear taps;
- `lanczos`: PIL's filter.
Measured against OpenCV on random images, uint8 results of bilinear, bicubic and area are
equal or within one grey level (float images within ~2e-5); nearest is exact.

`backend()` tells which one is in use; `TAMING_NO_OPENCV=1` forces the fallback (tests).
"""

from __future__ import annotations

import functools
import logging
import os

import numpy as np
from PIL import Image

logger = logging.getLogger(__name__)

__all__ = ["INTERPOLATIONS", "backend", "opencv", "resize"]

INTERPOLATIONS = ("nearest", "bilinear", "bicubic", "area", "lanczos")
_CV2_FLAGS = {"nearest": 0, "bilinear": 1, "bicubic": 2, "area": 3, "lanczos": 4}  # cv2.INTER_*
_PIL_FILTERS = {
    "bicubic": Image.Resampling.BICUBIC,
    "area": Image.Resampling.BOX,
    "lanczos": Image.Resampling.LANCZOS,
    "bilinear": Image.Resampling.BILINEAR,
}
_COEF_BITS = 11
_COEF_SCALE = 1 << _COEF_BITS


@functools.cache
def opencv():
    """The `cv2` module, or None when it is not installed (or `TAMING_NO_OPENCV=1`)."""
    if os.environ.get("TAMING_NO_OPENCV", "") not in ("", "0"):
        return None
    try:
        import cv2
    except ImportError:
        return None
    cv2.setNumThreads(1)  # DataLoader workers parallelise; cv2 threads would oversubscribe
    return cv2


def backend() -> str:
    """ "opencv" or "fallback" (see the module docstring)."""
    return "opencv" if opencv() is not None else "fallback"


def check_interpolation(name: str) -> str:
    if name not in INTERPOLATIONS:
        raise ValueError(
            f"unknown interpolation '{name}' (choose from {', '.join(INTERPOLATIONS)})"
        )
    return name


def resize(arr: np.ndarray, width: int, height: int, interpolation: str = "bilinear") -> np.ndarray:
    """Resize an (H, W) or (H, W, C) array to (height, width) as `cv2.resize` does.

    Args:
        arr: uint8 or float array.
        width, height: output size.
        interpolation: nearest, bilinear, bicubic, area or lanczos (cv2.INTER_*).
    """
    check_interpolation(interpolation)
    if arr.shape[0] == height and arr.shape[1] == width:
        return arr.copy()
    cv2 = opencv()
    if cv2 is not None:
        return _cv2_resize(cv2, arr, width, height, _CV2_FLAGS[interpolation])
    if interpolation == "nearest":
        return _nearest(arr, width, height)
    if interpolation == "bilinear":
        return _bilinear(arr, width, height)
    if interpolation == "bicubic":
        return _bicubic(arr, width, height)
    if interpolation == "area":
        if width <= arr.shape[1] and height <= arr.shape[0]:
            return _area(arr, width, height)
        return _bilinear(arr, width, height, taps=_area_up_taps)
    return _pil_resize(arr, width, height, interpolation)


def _cv2_resize(cv2, arr: np.ndarray, width: int, height: int, flag: int) -> np.ndarray:
    squeeze = arr.ndim == 3 and arr.shape[2] == 1
    channels = arr.shape[2] if arr.ndim == 3 else 1
    if channels > 4:  # cv2 handles at most 4 channels: resize in chunks (as albumentations)
        chunks = [
            _cv2_resize(cv2, arr[:, :, i : i + 4], width, height, flag)
            for i in range(0, channels, 4)
        ]
        return np.dstack([c if c.ndim == 3 else c[:, :, None] for c in chunks])
    out = cv2.resize(np.ascontiguousarray(arr), (width, height), interpolation=flag)
    if squeeze:
        out = out[:, :, None]  # cv2 drops a single channel axis
    return out


def _nearest_index(src: int, dst: int) -> np.ndarray:
    inv = 1.0 / (dst / src)  # OpenCV: ifx = 1 / (dsize / ssize), in double
    return np.minimum(np.floor(np.arange(dst) * inv).astype(np.int64), src - 1)


def _nearest(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    ys = _nearest_index(arr.shape[0], height)
    xs = _nearest_index(arr.shape[1], width)
    return np.ascontiguousarray(arr[ys][:, xs])


def _linear_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """Left source index and float32 fraction of each output position (OpenCV's rule)."""
    scale = 1.0 / (dst / src)  # OpenCV's rounding of the scale
    f = ((np.arange(dst, dtype=np.float64) + 0.5) * scale - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    f = (f - s.astype(np.float32)).astype(np.float32)
    low = s < 0
    f[low], s[low] = 0.0, 0
    high = s >= src - 1
    f[high], s[high] = 0.0, src - 1
    return s, f


def _area_up_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """OpenCV's INTER_AREA taps when not shrinking both axes (a sharpened linear)."""
    inv = dst / src
    scale = 1.0 / inv  # OpenCV's rounding of the scale
    d = np.arange(dst, dtype=np.float64)
    s = np.floor(d * scale).astype(np.int64)
    f = ((d + 1) - (s + 1) * inv).astype(np.float32)
    f = np.where(f <= 0, np.float32(0), f - np.floor(f)).astype(np.float32)
    high = s >= src - 1
    f[high], s[high] = 0.0, src - 1
    return s, f


def _fixed(coef: np.ndarray) -> np.ndarray:
    return np.rint(coef.astype(np.float32) * np.float32(_COEF_SCALE)).astype(np.int64)


def _bilinear(arr: np.ndarray, width: int, height: int, taps=None) -> np.ndarray:
    h, w = arr.shape[:2]
    if taps is None and h == 2 * height and w == 2 * width:  # OpenCV: fast 2x2 area average
        return _half(arr)
    taps = taps or _linear_taps
    ys, fy = taps(h, height)
    xs, fx = taps(w, width)
    ys1, xs1 = np.minimum(ys + 1, h - 1), np.minimum(xs + 1, w - 1)
    if arr.dtype != np.uint8:  # float32 arithmetic, as OpenCV's float path
        a = arr.astype(np.float32)
        fxx = fx.reshape((1, -1) + (1,) * (arr.ndim - 2))
        fyy = fy.reshape((-1, 1) + (1,) * (arr.ndim - 2))
        one = np.float32(1)
        rows = a[:, xs] * (one - fxx) + a[:, xs1] * fxx  # (H, width, ...)
        out = rows[ys] * (one - fyy) + rows[ys1] * fyy
        return out.astype(arr.dtype)
    a = arr.astype(np.int64)
    ax0, ax1 = _fixed(1.0 - fx), _fixed(fx)
    by0, by1 = _fixed(1.0 - fy), _fixed(fy)
    shape_x = (1, -1) + (1,) * (arr.ndim - 2)
    shape_y = (-1, 1) + (1,) * (arr.ndim - 2)
    rows = a[:, xs] * ax0.reshape(shape_x) + a[:, xs1] * ax1.reshape(shape_x)  # (H, width, ...)
    s0, s1 = rows[ys] >> 4, rows[ys1] >> 4
    out = ((by0.reshape(shape_y) * s0) >> 16) + ((by1.reshape(shape_y) * s1) >> 16)
    return ((out + 2) >> 2).clip(0, 255).astype(np.uint8)


def _cubic_taps(src: int, dst: int) -> tuple[np.ndarray, np.ndarray]:
    """(dst, 4) source indices (edges replicated) and float32 weights of OpenCV's cubic."""
    f = ((np.arange(dst) + 0.5) * (1.0 / (dst / src)) - 0.5).astype(np.float32)
    s = np.floor(f).astype(np.int64)
    x = (f - s.astype(np.float32)).astype(np.float32)
    a = np.float32(-0.75)
    c0 = ((a * (x + 1) - 5 * a) * (x + 1) + 8 * a) * (x + 1) - 4 * a
    c1 = ((a + 2) * x - (a + 3)) * x * x + 1
    c2 = ((a + 2) * (1 - x) - (a + 3)) * (1 - x) * (1 - x) + 1
    weights = np.stack([c0, c1, c2, 1 - c0 - c1 - c2], axis=1).astype(np.float32)
    return np.clip(s[:, None] + np.arange(-1, 3), 0, src - 1), weights


def _bicubic(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    iy, wy = _cubic_taps(arr.shape[0], height)
    ix, wx = _cubic_taps(arr.shape[1], width)
    ext = (1,) * (arr.ndim - 2)
    if arr.dtype != np.uint8:
        a = arr.astype(np.float64)
        rows = sum(a[:, ix[:, k]] * wx[:, k].reshape((1, -1) + ext) for k in range(4))
        out = sum(rows[iy[:, k]] * wy[:, k].reshape((-1, 1) + ext) for k in range(4))
        return out.astype(arr.dtype)
    a = arr.astype(np.int64)
    ax, by = _fixed(wx), _fixed(wy)
    rows = sum(a[:, ix[:, k]] * ax[:, k].reshape((1, -1) + ext) for k in range(4))
    out = sum(rows[iy[:, k]] * by[:, k].reshape((-1, 1) + ext) for k in range(4))
    return np.clip((out + (1 << (2 * _COEF_BITS - 1))) >> (2 * _COEF_BITS), 0, 255).astype(np.uint8)


def _area_weights(src: int, dst: int) -> np.ndarray:
    """(dst, src) overlap of each output cell with the source pixels, rows summing to 1."""
    scale = src / dst
    w = np.zeros((dst, src))
    for d in range(dst):
        lo, hi = d * scale, (d + 1) * scale
        for i in range(int(np.floor(lo)), min(int(np.ceil(hi)), src)):
            w[d, i] = max(0.0, min(hi, i + 1) - max(lo, i))
    return w / w.sum(axis=1, keepdims=True)


def _area(arr: np.ndarray, width: int, height: int) -> np.ndarray:
    wy, wx = _area_weights(arr.shape[0], height), _area_weights(arr.shape[1], width)
    a = arr.astype(np.float64)
    out = np.tensordot(wy, a, axes=(1, 0))  # (height, W, ...)
    out = np.moveaxis(np.tensordot(wx, out, axes=(1, 1)), 0, 1)  # (height, width, ...)
    if arr.dtype == np.uint8:
        return np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out.astype(arr.dtype)


def _half(arr: np.ndarray) -> np.ndarray:
    a = arr.astype(np.int64 if arr.dtype == np.uint8 else np.float64)
    s = a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]
    if arr.dtype == np.uint8:
        return ((s + 2) >> 2).astype(np.uint8)
    return (s * 0.25).astype(arr.dtype)


def _pil_resize(arr: np.ndarray, width: int, height: int, interpolation: str) -> np.ndarray:
    flt = _PIL_FILTERS[interpolation]
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(arr).resize((width, height), flt))
    planes = arr.astype(np.float32)
    if planes.ndim == 2:
        planes = planes[:, :, None]
    out = np.stack(
        [
            np.asarray(Image.fromarray(planes[:, :, c], mode="F").resize((width, height), flt))
            for c in range(planes.shape[2])
        ],
        axis=2,
    )
    if arr.dtype == np.uint8:
        out = np.clip(np.rint(out), 0, 255)
    out = out.astype(arr.dtype)
    return out[:, :, 0] if arr.ndim == 2 else out
