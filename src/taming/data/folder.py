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
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from taming.data.base import ImagePaths

logger = logging.getLogger(__name__)

__all__ = ["IMAGE_EXTENSIONS", "ImageFolderDataset", "find_images", "read_image_list"]

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


class ImageFolderDataset(ImagePaths):
    """Square crops of the images of a folder tree or of a file list.

    Args:
        root_or_list: a folder (searched recursively) or a text file with one path per line.
        size: shortest side -> size, then a size x size crop (smaller images are upscaled).
        random_crop: random crop (training) instead of center crop.
        random_flip: mirror left-right with probability 0.5.
        interpolation: resize filter (nearest, bilinear, bicubic, area, lanczos).
        extensions: image file extensions to collect from a folder (default: common ones).

    Raises:
        FileNotFoundError: `root_or_list` does not exist.
        ValueError: no image found there.
    """

    def __init__(
        self,
        root_or_list: str,
        size: int = 256,
        random_crop: bool = False,
        random_flip: bool = False,
        interpolation: str = "bilinear",
        extensions: list[str] | None = None,
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
        self.root_or_list = str(src)
        super().__init__(
            paths,
            size=size,
            random_crop=random_crop,
            random_flip=random_flip,
            interpolation=interpolation,
            exif_transpose=True,
            original_convert=False,
        )
        logger.info("%s: %d images from %s", type(self).__name__, len(paths), src)
