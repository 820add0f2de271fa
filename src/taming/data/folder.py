"""Train on your own images: a folder tree or a file list -> square crops in [-1, 1].

`ImageFolderDataset(root_or_list, size=256, random_crop=False, random_flip=False)`:

- a **directory** is searched recursively (symlinked folders are followed, each real folder
  once) for files with a common image extension (case-insensitive); hidden files and folders
  (names starting with ".") are ignored; paths are sorted;
- a **file** is read as a list, one image path per line; blank lines and lines starting with
  "#" are ignored. Absolute paths are used as they are. A relative path is resolved against
  the **list file's folder**; if nothing exists there but the path exists relative to the
  current working directory (how the original `CustomTrain` lists behaved), that one is used.
  Listed files that are missing or unreadable are skipped at load time with one warning each.

Every example is `{"image": float32 (size, size, 3) in [-1, 1], "file_path_": str}`.

One folder for training and validation: `split="train"` / `split="validation"` keep a seeded
random split of the sorted paths (`split_seed`; `val_fraction` of them, at least one, go to
validation), so the two datasets of a config never share an image and every run splits alike.
"""

from __future__ import annotations

import logging
import os
import random
from collections.abc import Sequence
from pathlib import Path

from taming.data.base import ImagePaths

logger = logging.getLogger(__name__)

__all__ = [
    "IMAGE_EXTENSIONS",
    "ImageFolderDataset",
    "find_images",
    "read_image_list",
    "split_paths",
]

SPLITS = ("train", "validation")

IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".png",
    ".bmp",
    ".gif",
    ".tif",
    ".tiff",
    ".webp",
    ".ppm",
    ".pgm",
    ".pbm",
    ".tga",
)


def _normalise_extensions(extensions: Sequence[str] | None) -> tuple[str, ...]:
    if extensions is None:
        return IMAGE_EXTENSIONS
    return tuple(e.lower() if e.startswith(".") else f".{e.lower()}" for e in extensions)


def find_images(root: str | os.PathLike, extensions: Sequence[str] | None = None) -> list[str]:
    """Sorted image files below `root` (recursive, following symlinked folders once).

    Raises:
        FileNotFoundError: `root` does not exist.
        NotADirectoryError: `root` is not a directory.
    """
    root = Path(root)
    if not root.exists():
        raise FileNotFoundError(f"image folder not found: {root}")
    if not root.is_dir():
        raise NotADirectoryError(f"not a folder: {root}")
    exts = _normalise_extensions(extensions)
    found: list[str] = []
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        real = os.path.realpath(dirpath)
        if real in seen:  # a symlink loop or a folder reached twice
            dirnames[:] = []
            continue
        seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in filenames:
            if not name.startswith(".") and os.path.splitext(name)[1].lower() in exts:
                found.append(os.path.join(dirpath, name))
    return sorted(found)


def read_image_list(list_file: str | os.PathLike) -> list[str]:
    """Image paths listed in a text file (see the module docstring for relative paths).

    Raises:
        FileNotFoundError: the list file does not exist.
    """
    list_file = Path(list_file)
    if not list_file.is_file():
        raise FileNotFoundError(f"image list file not found: {list_file}")
    base = list_file.resolve().parent
    paths: list[str] = []
    for line in list_file.read_text(encoding="utf-8").splitlines():
        entry = line.strip()
        if not entry or entry.startswith("#"):
            continue
        p = Path(entry).expanduser()
        if not p.is_absolute():
            candidate = base / p
            if not candidate.exists() and p.exists():
                candidate = p.resolve()  # CWD-relative, as the original lists
            p = candidate
        paths.append(str(p))
    return paths


def split_paths(
    paths: Sequence[str], split: str, val_fraction: float = 0.1, seed: int = 0
) -> list[str]:
    """The `split` ("train" or "validation") part of a seeded random split of `paths`.

    `max(1, round(val_fraction * n))` paths go to validation (none of fewer than 2 paths, so a
    one-image folder still trains); both parts keep the sorted order.

    Raises:
        ValueError: unknown `split`, or `val_fraction` outside [0, 1).
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS} or None, got {split!r}")
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie in [0, 1), got {val_fraction}")
    n = len(paths)
    n_val = 0 if n < 2 or val_fraction == 0 else max(1, round(val_fraction * n))
    order = random.Random(seed).sample(range(n), n)
    val = set(order[:n_val])
    keep = (lambda i: i in val) if split == "validation" else (lambda i: i not in val)
    return [p for i, p in enumerate(paths) if keep(i)]


class ImageFolderDataset(ImagePaths):
    """Square crops of the images of a folder tree or of a file list.

    Args:
        root_or_list: a folder (searched recursively) or a text file with one path per line.
        size: shortest side -> size, then a size x size crop (smaller images are upscaled).
        random_crop: random crop (training) instead of center crop.
        random_flip: mirror left-right with probability 0.5.
        interpolation: resize filter (nearest, bilinear, bicubic, area, lanczos).
        extensions: image file extensions to collect from a folder (default: common ones).
        split: None (all images), or "train" / "validation": that part of a seeded split
            (see `split_paths`), for one folder used for both.
        val_fraction: share of the images that `split="validation"` takes.
        split_seed: seed of the split (the same seed gives the same split).

    Raises:
        FileNotFoundError: `root_or_list` does not exist.
        ValueError: no image found there (or none left in this split).
    """

    def __init__(
        self,
        root_or_list: str,
        size: int = 256,
        random_crop: bool = False,
        random_flip: bool = False,
        interpolation: str = "bilinear",
        extensions: list[str] | None = None,
        split: str | None = None,
        val_fraction: float = 0.1,
        split_seed: int = 0,
    ):
        src = Path(root_or_list).expanduser()
        if not src.exists():
            raise FileNotFoundError(f"image folder or list file not found: {src}")
        if src.is_dir():
            paths = find_images(src, extensions)
            if not paths:
                exts = " ".join(_normalise_extensions(extensions))
                raise ValueError(f"no images found under {src} (extensions: {exts})")
        else:
            paths = read_image_list(src)
            if not paths:
                raise ValueError(f"image list file {src} lists no images")
        if split is not None:
            paths = split_paths(paths, split, val_fraction, split_seed)
            if not paths:
                raise ValueError(f"{src}: no images left for split '{split}'")
        self.root_or_list = str(src)
        self.split = split
        super().__init__(
            paths,
            size=size,
            random_crop=random_crop,
            random_flip=random_flip,
            interpolation=interpolation,
            exif_transpose=True,
            original_convert=False,
        )
        part = f" ({split} split)" if split else ""
        logger.info("%s: %d images from %s%s", type(self).__name__, len(paths), src, part)
