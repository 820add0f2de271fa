"""Robust image reading: any file PIL can decode becomes an 8-bit RGB image, bad files are skipped.

The original project opened images with `PIL.Image.open(path).convert("RGB")` and let any
unreadable file kill the epoch. Here:

- `load_image` decodes fully (so truncated files fail here, not later), applies the EXIF
  orientation (optional: label maps and bounding boxes were made on the stored pixel grid, so
  datasets with such targets turn it off), and converts every mode to RGB:
  * `RGB`: as is; `L`, `1`, `CMYK`, `YCbCr`, ...: `Image.convert("RGB")`;
  * 16-bit grayscale (`I;16*`): rescaled to 8 bits (`round(v / 257)`), not clipped;
  * 32-bit `I` / `F`: values already in [0, 255] (or [0, 1] for `F`) are kept (scaled), other
    ranges are min-max normalised per image;
  * transparency (`RGBA`, `LA`, `PA`, `P`/`L` with a transparent colour): alpha-composited on
    a **white** background. The original's plain `convert("RGB")` dropped the alpha channel and
    showed whatever colour sat under transparent pixels (often black); white is what a viewer
    shows and is the usual choice for logos/cut-outs.
- Every decoding problem is raised as `BadImageError` (an `OSError`) naming the file.
- Decompression bombs (a small file that decodes to a huge image) are refused before decoding:
  `check_pixels` compares the header's width x height with an explicit limit, Pillow's
  default of 89,478,485 pixels (about 256 MiB as RGB), configurable with the environment
  variable `TAMING_MAX_IMAGE_PIXELS` (0: no limit).
- `BadFileTracker` turns such errors into "use the next readable example": one warning per bad
  file, and a count of skipped files that is shared with DataLoader worker processes (a flag per
  example in shared memory), so `num_skipped` in the main process is the total over workers.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from typing import TypeVar

import numpy as np
from PIL import Image, ImageOps

logger = logging.getLogger(__name__)

__all__ = [
    "BadFileTracker",
    "BadImageError",
    "MAX_IMAGE_PIXELS_ENV",
    "NoReadableExampleError",
    "check_pixels",
    "load_image",
    "max_image_pixels",
    "to_rgb",
]

T = TypeVar("T")

WHITE = (255, 255, 255)

MAX_IMAGE_PIXELS_ENV = "TAMING_MAX_IMAGE_PIXELS"
DEFAULT_MAX_IMAGE_PIXELS = 89_478_485  # Pillow's own default, made explicit


class BadImageError(OSError):
    """A file that cannot be decoded into a usable example.

    Attributes:
        path: the offending file.
        reason: a one-line description of the problem.
    """

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


class NoReadableExampleError(RuntimeError):
    """Raised when every example of a dataset turned out to be unreadable."""


def max_image_pixels() -> int | None:
    """The pixel limit of the data loaders (`TAMING_MAX_IMAGE_PIXELS`; None: no limit)."""
    raw = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = int(float(raw))
    except ValueError:
        raise ValueError(f"{MAX_IMAGE_PIXELS_ENV}={raw!r}: expected a number of pixels") from None
    return value if value > 0 else None


def check_pixels(img: Image.Image, path: str | os.PathLike) -> None:
    """Refuse (`BadImageError`) an opened, not yet decoded image over the pixel limit."""
    limit = max_image_pixels()
    w, h = img.size
    if limit is not None and w * h > limit:
        raise BadImageError(
            path,
            f"{w}x{h} = {w * h:,} pixels is over the limit of {limit:,} (a decompression "
            f"bomb?); not decoded. Set {MAX_IMAGE_PIXELS_ENV} to allow larger images",
        )


def _rescale_to_uint8(arr: np.ndarray, mode: str) -> np.ndarray:
    """Map a single-channel 16/32-bit integer or float image to uint8 (H, W)."""
    if mode.startswith("I;16"):
        # 16-bit: full range 0..65535 -> 0..255 (65535 / 257 = 255)
        return np.clip(np.round(arr.astype(np.float64) / 257.0), 0, 255).astype(np.uint8)
    a = arr.astype(np.float64)
    finite = np.isfinite(a)
    if not finite.all():
        a = np.where(finite, a, 0.0)
    lo, hi = (float(a.min()), float(a.max())) if a.size else (0.0, 0.0)
    if mode == "F" and lo >= 0.0 and hi <= 1.0:
        a = a * 255.0
    elif lo >= 0.0 and hi <= 255.0:
        pass
    elif mode == "I" and lo >= 0.0 and hi <= 65535.0:
        a = a / 257.0  # a 16-bit image stored as 32-bit integers (older Pillow, TIFF)
    else:
        a = (a - lo) * (255.0 / max(hi - lo, 1e-12))
    return np.clip(np.round(a), 0, 255).astype(np.uint8)


def _composite_on_white(img: Image.Image) -> Image.Image:
    rgba = img.convert("RGBA")
    out = Image.new("RGB", rgba.size, WHITE)
    out.paste(rgba, mask=rgba.getchannel("A"))
    return out


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert a decoded PIL image of any mode to 8-bit RGB (see the module docstring).

    Raises:
        ValueError: the mode cannot be converted.
    """
    mode = img.mode
    if mode == "RGB":
        return img
    if mode.startswith("I;16") or mode in ("I", "F"):
        gray = _rescale_to_uint8(np.asarray(img), mode)  # (H, W) uint8
        return Image.fromarray(gray, mode="L").convert("RGB")
    if mode in ("RGBA", "RGBa", "LA", "La", "PA") or "transparency" in img.info:
        return _composite_on_white(img)
    return img.convert("RGB")


def load_image(
    path: str | os.PathLike, exif_transpose: bool = True, original_convert: bool = False
) -> Image.Image:
    """Open, fully decode and convert an image file to RGB.

    Args:
        path: image file.
        exif_transpose: apply the EXIF orientation tag (turn off when targets such as
            segmentation maps or boxes refer to the stored pixel grid).
        original_convert: convert exactly as the original project did
            (`Image.convert("RGB")`: alpha dropped, no rescaling of 16/32-bit modes), for the
            datasets that must give the original's pixels.

    Returns:
        An RGB `PIL.Image.Image` (8 bits per channel).

    Raises:
        BadImageError: the file is missing, not an image, truncated, corrupt, too large
            (PIL's decompression-bomb limit) or of an unsupported mode.
    """
    try:
        with Image.open(path) as img:
            check_pixels(img, path)
            img.load()  # decode now: truncated data fails here
            if exif_transpose:
                try:
                    img = ImageOps.exif_transpose(img)
                except Exception as e:  # malformed EXIF: the pixels are still fine
                    logger.debug("%s: ignoring unreadable EXIF orientation (%s)", path, e)
            rgb = img.convert("RGB") if original_convert and img.mode != "RGB" else to_rgb(img)
            if rgb is img:
                rgb = img.copy()  # detach from the file handle
    except FileNotFoundError:
        raise BadImageError(path, "file not found") from None
    except BadImageError:
        raise
    except Exception as e:
        raise BadImageError(path, f"{type(e).__name__}: {e}") from e
    if rgb.width == 0 or rgb.height == 0:
        raise BadImageError(path, f"empty image ({rgb.width}x{rgb.height})")
    return rgb


class BadFileTracker:
    """Skip unreadable examples: fetch the next readable one instead, warn once per bad file.

    One flag per example lives in shared memory, so DataLoader workers (fork or spawn) and
    the main process see the same set of bad examples: a file found bad by one worker is
    skipped silently by the others, and `num_skipped` is the total over all processes.

    Args:
        length: number of examples.
        name: dataset name used in log messages.
    """

    def __init__(self, length: int, name: str = "dataset"):
        self.length = int(length)
        self.name = name
        import torch  # here, so that importing the readers (the CLI's parser) stays torch-free

        self._flags = torch.zeros(max(self.length, 1), dtype=torch.uint8)  # (N,) 1 = bad
        try:
            self._flags.share_memory_()
        except (RuntimeError, OSError) as e:  # no shared memory: counts stay per process
            logger.debug("%s: bad-file flags not shared across workers (%s)", name, e)

    def fetch(self, index: int, load: Callable[[int], T]) -> T:
        """Return `load(index)`, or `load(j)` for the next readable `j` (wrapping around).

        Args:
            index: requested example, `-length <= index < length`.
            load: loads example `j`; raises `BadImageError` for an unreadable one.

        Raises:
            IndexError: `index` out of range.
            NoReadableExampleError: no example of the dataset can be read.
        """
        n = self.length
        if not -n <= index < n:
            raise IndexError(f"{self.name}: index {index} out of range for {n} examples")
        index %= n
        last: BadImageError | None = None
        for step in range(n):
            j = (index + step) % n
            if self._flags[j]:
                continue
            try:
                return load(j)
            except BadImageError as e:
                self._flags[j] = 1
                last = e
                logger.warning(
                    "%s: skipping unreadable example %d (%s: %s); using the next one instead",
                    self.name,
                    j,
                    e.path,
                    e.reason,
                )
        where = f" (in {os.path.dirname(last.path) or '.'}; last: {last})" if last else ""
        raise NoReadableExampleError(f"{self.name}: none of its {n} examples could be read{where}")

    @property
    def num_skipped(self) -> int:
        """Number of distinct examples found unreadable so far (all processes)."""
        return int(self._flags[: self.length].sum())

    @property
    def bad_indices(self) -> list[int]:
        """Sorted indices of the examples found unreadable so far."""
        return self._flags[: self.length].nonzero().flatten().tolist()
