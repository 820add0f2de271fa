"""Image files in and out of models: `(N, C, H, W)` float tensors in [-1, 1].

The models of this package (VQGAN, "Taming Transformers", Esser et al., CVPR 2021) read and
write images in [-1, 1], channels first. These helpers are the one place that turns files into
such tensors and back:

    x = taming.images.load("photo.jpg", size=256)        # (1, 3, 256, 256), center crop
    taming.images.save(model.decode_code(codes), "out.png")
    taming.images.make_grid(samples, nrow=4).save("grid.png")

`load` accepts anything Pillow reads (EXIF orientation applied, palette/CMYK/16-bit/alpha
converted to RGB; `taming.data.io.load_image`). Unreadable files raise `BadImageError` (an
`OSError` naming the file).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import Tensor

__all__ = ["fit_size", "load", "make_grid", "save", "save_images", "to_pil"]


def _as_hw(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, int):
        return size, size
    h, w = (int(s) for s in size)
    return h, w


def fit_size(image_hw: tuple[int, int], multiple_of: int) -> tuple[int, int]:
    """The largest `(H, W)` not above `image_hw` whose sides are multiples of `multiple_of`."""
    h, w = image_hw
    m = max(1, int(multiple_of))
    return max(m, h // m * m), max(m, w // m * m)


def load(
    path: str | Path,
    size: int | tuple[int, int] | None = None,
    crop: str | None = "center",
    multiple_of: int = 1,
) -> Tensor:
    """Read an image file as `(1, 3, H, W)` float32 in [-1, 1].

    Args:
        path: the image file.
        size: target `H, W` (an int for a square). None keeps the file's size (cropped to
            multiples of `multiple_of`).
        crop: "center": scale so the image covers `size` (bicubic), then cut the center (the
            aspect ratio is kept); None: resize to `size` exactly (the aspect may change).
        multiple_of: round the size down to multiples of this (a first stage's factor `f`).
    """
    from taming.data.io import load_image

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"image not found: {path}")
    if crop not in ("center", None):
        raise ValueError(f"crop must be 'center' or None, got {crop!r}")
    img = load_image(str(path))  # RGB
    w0, h0 = img.size
    if size is None:
        th, tw = fit_size((h0, w0), multiple_of)
        if (th, tw) != (h0, w0):  # cut the remainder off, never resample
            top, left = (h0 - th) // 2, (w0 - tw) // 2
            img = img.crop((left, top, left + tw, top + th))
    else:
        th, tw = fit_size(_as_hw(size), multiple_of)
    if (img.height, img.width) != (th, tw):
        if crop == "center":
            scale = max(th / h0, tw / w0)
            sh, sw = max(th, round(h0 * scale)), max(tw, round(w0 * scale))
            if (sh, sw) != (h0, w0):
                img = img.resize((sw, sh), Image.Resampling.BICUBIC)
            top, left = (sh - th) // 2, (sw - tw) // 2
            img = img.crop((left, top, left + tw, top + th))
        else:
            img = img.resize((tw, th), Image.Resampling.BICUBIC)
    x = np.asarray(img, dtype=np.float32) / 127.5 - 1.0  # (H, W, 3)
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous()  # (1, 3, H, W)


def to_pil(image: Tensor) -> Image.Image:
    """One image `(C, H, W)` in [-1, 1] -> PIL (L for one channel, else RGB of the first 3)."""
    x = image.detach().float().cpu().clamp(-1.0, 1.0)
    arr = ((x + 1.0) * 127.5).round().to(torch.uint8).numpy()
    if arr.shape[0] == 1:
        return Image.fromarray(arr[0], mode="L")
    if arr.shape[0] == 2:
        arr = np.concatenate((arr, arr[:1]))
    return Image.fromarray(np.ascontiguousarray(arr[:3].transpose(1, 2, 0)), mode="RGB")


def make_grid(
    images: Tensor, nrow: int | None = None, padding: int = 2, pad_value: float = 1.0
) -> Image.Image:
    """Tile images `(N, C, H, W)` in [-1, 1] into one PIL image, `nrow` per row.

    Args:
        images: the images (one size).
        nrow: images per row (default: `ceil(sqrt(N))`).
        padding: pixels between and around the images.
        pad_value: padding colour in [-1, 1] (1: white; -1: black, as torchvision's grids).
    """
    if images.ndim != 4 or images.shape[0] == 0:
        raise ValueError(f"make_grid takes (N, C, H, W) images, got {tuple(images.shape)}")
    n, c, h, w = images.shape
    nrow = max(1, min(nrow or math.ceil(math.sqrt(n)), n))
    rows = math.ceil(n / nrow)
    grid = torch.full(
        (c, rows * (h + padding) + padding, nrow * (w + padding) + padding), float(pad_value)
    )
    x = images.detach().float().cpu().clamp(-1.0, 1.0)
    for i in range(n):
        r, col = divmod(i, nrow)
        top, left = padding + r * (h + padding), padding + col * (w + padding)
        grid[:, top : top + h, left : left + w] = x[i]
    return to_pil(grid)


def save(image: Tensor, path: str | Path, nrow: int | None = None) -> Path:
    """Write `(C, H, W)` or `(1, C, H, W)` as one image file, `(N, C, H, W)` as a grid.

    The format follows the suffix (PNG, JPEG, ...); parent folders are created.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if image.ndim == 3:
        image = image[None]
    if image.ndim != 4:
        raise ValueError(f"save takes (C, H, W) or (N, C, H, W), got {tuple(image.shape)}")
    pil = to_pil(image[0]) if image.shape[0] == 1 else make_grid(image, nrow=nrow)
    pil.save(path)
    return path


def save_images(
    images: Tensor, folder: str | Path, start: int = 0, pattern: str = "{:06}.png"
) -> list[Path]:
    """Write each image `(N, C, H, W)` in [-1, 1] as `folder/pattern.format(start + i)`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i, image in enumerate(images):
        path = folder / pattern.format(start + i)
        to_pil(image).save(path)
        paths.append(path)
    return paths
