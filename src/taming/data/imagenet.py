"""ImageNet datasets of the original `taming/data/imagenet.py`: ImageNetTrain / ImageNetValidation.

`ImageNetTrain(config=None)` / `ImageNetValidation(config=None)` read the original cache layout
(`taming.data.imagenet_prepare`: `${XDG_CACHE_HOME:-~/.cache}/autoencoders/data/
ILSVRC2012_{train,validation}/data/<wnid>/*.JPEG`, `filelist.txt`, `.ready`), preparing it from
the ILSVRC2012 tar when needed. `config` (dict or OmegaConf) keys, as the original:
`size` (shortest side + square crop; 0 = full images), `sub_indices` (class subset, e.g.
`"30-32, 33-37, 151-268"`; ranges are half-open, `a-b` = a..b-1, mapped to wnids with
`index_synset.yaml`), `ImageNetTrain/random_crop` (default True) and
`ImageNetValidation/random_crop` (default False); ours: `root` (another prepared folder).

The file `n06596364_9591.JPEG` is left out (as the original). Items are `ImagePaths` examples:
`image` (float32 (H, W, 3) in [-1, 1]), `relpath`, `synsets` (wnid), `class_label` (int64:
index of the wnid among the **sorted wnids present**, 0..999 for the full set, 0..K-1 for a
subset), `human_label`, `file_path_`.

The depth variants (`ImageNetTrainWithDepth`, `RINTrainWithDepth`, `DRINExamples`, ...) live in
`taming.data.imagenet_depth`, the super-resolution / edge variants (`ImageNetScale*`,
`ImageNetEdges*`) in `taming.data.imagenet_sr`; both are importable from here too.
"""

from __future__ import annotations

import importlib
import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from torch.utils.data import Dataset

from taming.data.base import ImagePaths
from taming.data.imagenet_prepare import (
    cache_root,
    load_human_labels,
    load_index_synsets,
    prepare,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ImageNetBase",
    "ImageNetTrain",
    "ImageNetValidation",
    "give_synsets_from_indices",
    "retrieve",
    "str_to_indices",
]

IGNORED_FILES = {"n06596364_9591.JPEG"}
_MOVED = {
    "taming.data.imagenet_depth": (
        "BaseWithDepth",
        "DRINExamples",
        "ImageNetTrainWithDepth",
        "ImageNetValidationWithDepth",
        "RINTrainWithDepth",
        "RINValidationWithDepth",
        "get_preprocessor",
        "load_depth",
        "rgba_to_depth",
        "RIN_SUB_INDICES",
    ),
    "taming.data.imagenet_sr": (
        "ImageNetEdges",
        "ImageNetEdgesTrain",
        "ImageNetEdgesValidation",
        "ImageNetScale",
        "ImageNetScaleTrain",
        "ImageNetScaleValidation",
        "imscale",
    ),
}


def __getattr__(name: str) -> Any:  # PEP 562: the original module's other names
    for module, names in _MOVED.items():
        if name in names:
            return getattr(importlib.import_module(module), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def retrieve(config: Mapping, key: str, default: Any = None) -> Any:
    """`config["a"]["b"]` for the key "a/b" (the original's slash paths), else `default`."""
    node: Any = config
    for part in key.split("/"):
        if not isinstance(node, Mapping) or part not in node:
            return default
        node = node[part]
    return node


def str_to_indices(string: str) -> list[int]:
    """`"32-35, 256"` -> [32, 33, 34, 256] (half-open ranges, sorted).

    Raises:
        ValueError: a malformed part (e.g. a trailing comma).
    """
    if string.strip().endswith(","):
        raise ValueError(f"sub_indices '{string}' ends with a comma, remove it")
    indices: list[int] = []
    for sub in string.split(","):
        parts = sub.split("-")
        try:
            if len(parts) == 1:
                indices.append(int(parts[0]))
            elif len(parts) == 2:
                indices.extend(range(int(parts[0]), int(parts[1])))
            else:
                raise ValueError(sub)
        except ValueError:
            raise ValueError(f"sub_indices '{string}': cannot read '{sub.strip()}'") from None
    return sorted(indices)


def give_synsets_from_indices(indices: list[int], index_synsets: Mapping[int, str]) -> list[str]:
    """wnids of class indices (via `index_synset.yaml`)."""
    missing = [i for i in indices if i not in index_synsets]
    if missing:
        raise ValueError(f"sub_indices: class index {missing[0]} not in index_synset.yaml")
    synsets = [str(index_synsets[i]) for i in indices]
    logger.info("using %d synsets for the ImageNet subset", len(synsets))
    return synsets


class ImageNetBase(Dataset):
    """Shared part of `ImageNetTrain` / `ImageNetValidation` (see the module docstring)."""

    split = "train"
    default_random_crop = True

    def __init__(self, config: Mapping | None = None):
        if config is None:
            config = {}
        elif not isinstance(config, dict):
            from omegaconf import OmegaConf

            config = OmegaConf.to_container(config) if OmegaConf.is_config(config) else dict(config)
        self.config = config
        self.random_crop = self._random_crop_default()
        self.root = str(config.get("root") or cache_root(self.split))
        prepare(self.split, self.root)
        self.datadir = os.path.join(self.root, "data")
        self.txt_filelist = os.path.join(self.root, "filelist.txt")
        self._load()

    def _random_crop_default(self) -> bool:
        key = "ImageNetTrain" if self.split == "train" else "ImageNetValidation"
        return bool(retrieve(self.config, f"{key}/random_crop", self.default_random_crop))

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self.data[i]

    @property
    def num_skipped(self) -> int:
        return self.data.num_skipped

    def _filter_relpaths(self, relpaths: list[str]) -> list[str]:
        relpaths = [p for p in relpaths if p.split("/")[-1] not in IGNORED_FILES]
        if "sub_indices" in self.config:
            indices = str_to_indices(str(self.config["sub_indices"]))
            synsets = set(give_synsets_from_indices(indices, load_index_synsets(self.root)))
            relpaths = [p for p in relpaths if p.split("/")[0] in synsets]
        return relpaths

    def _load(self) -> None:
        with open(self.txt_filelist, encoding="utf-8") as f:
            relpaths = f.read().splitlines()
        n_listed = len(relpaths)
        self.relpaths = self._filter_relpaths(relpaths)
        logger.info("removed %d files from the file list", n_listed - len(self.relpaths))
        if not self.relpaths:
            raise ValueError(f"ImageNet {self.split}: no images left in {self.txt_filelist}")
        self.synsets = [p.split("/")[0] for p in self.relpaths]
        self.abspaths = [os.path.join(self.datadir, p) for p in self.relpaths]
        unique = np.unique(self.synsets)
        class_dict = {s: i for i, s in enumerate(unique)}
        self.class_labels = [class_dict[s] for s in self.synsets]
        human = load_human_labels(self.root)
        unknown = [s for s in unique if s not in human]
        if unknown:
            raise ValueError(
                f"ImageNet: synset {unknown[0]} has no name in synset_human.txt "
                f"(add a line '<wnid> <name>' to {self.root}/synset_human.txt)"
            )
        self.human_labels = [human[s] for s in self.synsets]
        labels = {
            "relpath": np.array(self.relpaths),
            "synsets": np.array(self.synsets),
            "class_label": np.array(self.class_labels, dtype=np.int64),
            "human_label": np.array(self.human_labels),
        }
        self.data = ImagePaths(
            self.abspaths,
            labels=labels,
            size=retrieve(self.config, "size", default=0),
            random_crop=self.random_crop,
        )


class ImageNetTrain(ImageNetBase):
    """ILSVRC2012 train (random crops by default)."""

    split = "train"
    default_random_crop = True


class ImageNetValidation(ImageNetBase):
    """ILSVRC2012 validation (center crops by default)."""

    split = "validation"
    default_random_crop = False
