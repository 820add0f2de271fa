"""Image sets to evaluate: a folder, a dataset config, or images in memory.

Generation metrics (FID/KID/IS) read images exactly as torch-fidelity does, so that the same
folder gives the same features in the same order:

- a folder is listed non-recursively (`recursive=True` walks it), files with the extensions
  png, jpg, jpeg (case-insensitive), each as `os.path.realpath`, **sorted** (the order KID's
  subsets and IS's shuffle are drawn in);
- each file is opened with Pillow and converted to RGB (`Image.open(p).convert("RGB")`, no
  EXIF rotation, no resizing: the network resizes), giving uint8 `(3, H, W)`.

A dataset config is a YAML file with a `data:` section as `taming train` reads it (the
`validation` split is used, else `test`, else `train`) or a bare `{target, params}` of a
dataset; its examples' `image` (float `(H, W, 3)` in [-1, 1]) are turned back into uint8.

Every source can name a `fingerprint` (its files with sizes and modification times, or the
config and its files) that keys the feature cache; None means "do not cache".
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from taming.config import ConfigError

__all__ = [
    "DatasetSource",
    "FolderSource",
    "ImageSource",
    "TORCH_FIDELITY_EXTENSIONS",
    "TensorSource",
    "list_images",
    "load_dataset",
    "open_source",
    "read_image_uint8",
    "to_uint8",
]

TORCH_FIDELITY_EXTENSIONS = ("png", "jpg", "jpeg")
_SPLITS = ("validation", "test", "train")


def list_images(
    folder: str | os.PathLike,
    recursive: bool = False,
    extensions: Sequence[str] = TORCH_FIDELITY_EXTENSIONS,
) -> list[str]:
    """Image files of `folder` in torch-fidelity's order (see the module docstring)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder not found: {folder}")
    exts = {e.lower().lstrip(".") for e in extensions}
    top = os.path.realpath(folder)
    files = []
    for root, _dirs, names in os.walk(folder):
        if not recursive and os.path.realpath(root) != top:
            continue
        for name in names:
            ext = os.path.splitext(name)[1].lower().lstrip(".")
            if ext in exts:
                files.append(os.path.realpath(os.path.join(root, name)))
    return sorted(files)


def read_image_uint8(path: str | os.PathLike) -> Tensor:
    """One image file as uint8 `(3, H, W)` RGB (Pillow's `convert("RGB")`, no EXIF rotation)."""
    try:
        with Image.open(path) as img:
            arr = np.asarray(img.convert("RGB"))  # (H, W, 3)
    except (OSError, ValueError) as e:
        raise OSError(f"cannot read image {path}: {e}") from e
    return torch.from_numpy(arr.copy()).permute(2, 0, 1)  # (3, H, W)


def to_uint8(images: Tensor) -> Tensor:
    """Float images in [-1, 1] `(B, 3, H, W)` -> uint8, as a PNG of them would store."""
    return ((images.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)


def _batches_by_size(items: Iterator[Tensor], batch_size: int) -> Iterator[Tensor]:
    """Stack consecutive `(3, H, W)` images of one size into batches of at most `batch_size`."""
    batch: list[Tensor] = []
    for x in items:
        if batch and (len(batch) == batch_size or x.shape != batch[0].shape):
            yield torch.stack(batch)
            batch = []
        batch.append(x)
    if batch:
        yield torch.stack(batch)


def _file_fingerprint(paths: Sequence[str]) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = os.stat(p)
        h.update(f"{p}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
    return h.hexdigest()


class ImageSource:
    """A set of images (uint8 `(3, H, W)` each) in a fixed order."""

    name: str = "images"

    def __len__(self) -> int:
        raise NotImplementedError

    def fingerprint(self) -> str | None:
        """Content key of the set for caching (None: not cacheable)."""
        return None

    def __iter__(self) -> Iterator[Tensor]:
        raise NotImplementedError

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        """uint8 batches `(B, 3, H, W)` in order (a batch ends where the image size changes)."""
        return _batches_by_size(iter(self), batch_size)


class FolderSource(ImageSource):
    """The images of a folder, listed as torch-fidelity lists them."""

    def __init__(self, folder: str | os.PathLike, recursive: bool = False) -> None:
        self.folder = Path(folder)
        self.recursive = recursive
        self.files = list_images(folder, recursive=recursive)
        if not self.files:
            how = "below" if recursive else "in"
            raise FileNotFoundError(f"no png/jpg/jpeg images {how} {self.folder}")
        self.name = self.folder.resolve().name or "folder"

    def __len__(self) -> int:
        return len(self.files)

    def fingerprint(self) -> str:
        return f"folder:{_file_fingerprint(self.files)}"

    def __iter__(self) -> Iterator[Tensor]:
        return (read_image_uint8(p) for p in self.files)


class TensorSource(ImageSource):
    """Images in memory: uint8 `(N, 3, H, W)`, or float in [-1, 1] (converted)."""

    def __init__(self, images: Tensor, name: str = "images") -> None:
        self.images = images if images.dtype == torch.uint8 else to_uint8(images)
        self.name = name

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __iter__(self) -> Iterator[Tensor]:
        return iter(self.images)

    def batches(self, batch_size: int) -> Iterator[Tensor]:
        return iter(torch.split(self.images, batch_size))


def load_dataset(
    config: str | os.PathLike, split: str | None = None, size: int | None = None
) -> tuple[Any, dict]:
    """Build the dataset of a config file -> `(dataset, its {target, params} as a dict)`.

    Args:
        config: YAML with `data.params.<split>` (or `<split>` at the top), or a bare
            `{target, params}` of a dataset.
        split: which split (default: validation, else test, else train).
        size: override `params.size` (the image size) if given.
    """
    from omegaconf import OmegaConf

    from taming.config import instantiate_from_config, load_config, to_container

    cfg = load_config([config])
    node: Any = cfg.get("data", cfg)
    where = str(config)
    if "target" in node and "params" in node and any(s in node.params for s in _SPLITS):
        node = node.params  # a DataModuleFromConfig
        where += ":data.params"
    if "target" not in node or split is not None:
        splits = [split] if split is not None else [s for s in _SPLITS if s in node]
        if not splits or splits[0] not in node:
            raise ConfigError(
                f"{where}: no dataset found (expected data.params.validation/test/train "
                f"or a {{target, params}}{f' split {split!r}' if split else ''})"
            )
        where += f".{splits[0]}"
        node = node[splits[0]]
    ds_cfg = to_container(node)
    if size is not None:
        ds_cfg = {**ds_cfg, "params": {**(ds_cfg.get("params") or {}), "size": int(size)}}
    try:
        dataset = instantiate_from_config(OmegaConf.create(ds_cfg), where=where)
    except ConfigError:
        raise
    except (OSError, ValueError, ImportError) as e:
        raise ConfigError(f"{where}: {str(e).splitlines()[0]}") from e
    return dataset, ds_cfg


class DatasetSource(ImageSource):
    """The `image` entries of a dataset built from a config (see `load_dataset`)."""

    def __init__(
        self, config: str | os.PathLike, split: str | None = None, size: int | None = None
    ) -> None:
        self.config = Path(config)
        self.dataset, self.dataset_config = load_dataset(config, split=split, size=size)
        self.name = self.config.stem

    def __len__(self) -> int:
        return len(self.dataset)

    def fingerprint(self) -> str | None:
        paths = getattr(self.dataset, "paths", None)
        if paths is None:
            return None  # no file list to tell a changed dataset by
        key = json.dumps(self.dataset_config, sort_keys=True, default=str)
        return f"dataset:{hashlib.sha256(key.encode()).hexdigest()}:{_file_fingerprint(paths)}"

    def __iter__(self) -> Iterator[Tensor]:
        for i in range(len(self.dataset)):
            x = np.asarray(self.dataset[i]["image"], dtype=np.float32)  # (H, W, 3) in [-1, 1]
            if x.ndim != 3 or x.shape[2] != 3:
                raise ConfigError(f"{self.config}: example {i} is not an RGB image: {x.shape}")
            yield to_uint8(torch.from_numpy(x).permute(2, 0, 1))  # (3, H, W)


def open_source(spec: str | os.PathLike, recursive: bool = False) -> ImageSource:
    """A folder or a dataset config (`.yaml`/`.yml`) as an `ImageSource`."""
    p = Path(spec)
    if p.is_dir():
        return FolderSource(p, recursive=recursive)
    if p.is_file() and p.suffix.lower() in (".yaml", ".yml"):
        return DatasetSource(p)
    if not p.exists():
        raise FileNotFoundError(f"no such image folder or file: {p}")
    raise ConfigError(f"{p}: expected an image folder, a dataset config (.yaml) or an .npz")
