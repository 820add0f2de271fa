"""ImageNet (ILSVRC2012) on disk: the original's cache layout, preparation from the tars, synsets.

Layout (the original README's): `${XDG_CACHE_HOME:-~/.cache}/autoencoders/data/ILSVRC2012_{train,
validation}/` holding `data/<wnid>/<name>.JPEG`, `filelist.txt` (sorted relative paths
`<wnid>/<name>.JPEG`, one directory level) and the marker `.ready`. A root that the original
prepared is used as it is (also its `index_synset.yaml` / `synset_human.txt`); nothing is ever
downloaded: the 1000 wnids (index order = sorted wnids) and their names ship with this package
(`taming/data/imagenet_info/`).

`prepare(split, root)` runs when `.ready` is missing:
- `data/` exists and no extraction is in progress: only `filelist.txt` is (re)built;
- otherwise `ILSVRC2012_img_train.tar` / `ILSVRC2012_img_val.tar` in the root is extracted with
  a progress bar (bytes of the tar). Train: every per-class tar inside is unpacked straight into
  `data/<wnid>/` (no sub-tars are written). Validation: the flat JPEGs are sorted into
  `data/<wnid>/` with `validation_synset.txt` (`<file> <wnid>` per line, the original's file;
  place it in the root). Extraction is resumable: finished members are recorded in
  `.extracted` and skipped by the next run; files are written under a temporary name and
  renamed, so an interrupted run leaves no truncated JPEG. Then `filelist.txt` and `.ready`.
- nothing there: `FileNotFoundError` saying what to place where.
"""

from __future__ import annotations

import glob
import logging
import os
import tarfile
from importlib import resources
from pathlib import Path
from typing import IO

import yaml
from tqdm import tqdm

logger = logging.getLogger(__name__)

__all__ = [
    "SPLITS",
    "cache_root",
    "is_prepared",
    "load_human_labels",
    "load_index_synsets",
    "prepare",
    "write_filelist",
]

SPLITS = {
    "train": {
        "name": "ILSVRC2012_train",
        "tar": "ILSVRC2012_img_train.tar",
        "size": 147_897_477_120,
        "length": 1_281_167,
    },
    "validation": {
        "name": "ILSVRC2012_validation",
        "tar": "ILSVRC2012_img_val.tar",
        "size": 6_744_924_160,
        "length": 50_000,
    },
}
VALIDATION_SYNSETS = "validation_synset.txt"
_PROGRESS = ".extracted"


def cache_root(split: str) -> str:
    """`${XDG_CACHE_HOME:-~/.cache}/autoencoders/data/ILSVRC2012_<split>` (as the original)."""
    cachedir = os.environ.get("XDG_CACHE_HOME", os.path.expanduser("~/.cache"))
    return os.path.join(cachedir, "autoencoders/data", SPLITS[split]["name"])


def is_prepared(root: str) -> bool:
    return Path(root, ".ready").exists()


def _info_file(root: str, name: str) -> IO[str]:
    """The user's original file in `root` if present, else the packaged one."""
    own = os.path.join(root, name)
    if os.path.isfile(own):
        return open(own, encoding="utf-8")
    return resources.files("taming.data").joinpath("imagenet_info", name).open(encoding="utf-8")


def load_index_synsets(root: str) -> dict[int, str]:
    """Class index -> wnid (`index_synset.yaml`)."""
    with _info_file(root, "index_synset.yaml") as f:
        return {int(k): str(v) for k, v in yaml.safe_load(f).items()}


def load_human_labels(root: str) -> dict[str, str]:
    """wnid -> human-readable name (`synset_human.txt`)."""
    with _info_file(root, "synset_human.txt") as f:
        return dict(line.split(maxsplit=1) for line in f.read().splitlines() if line.strip())


def write_filelist(root: str) -> int:
    """(Re)write `filelist.txt` from `data/*/*.JPEG`; returns the number of files."""
    datadir = os.path.join(root, "data")
    files = sorted(
        os.path.relpath(p, start=datadir) for p in glob.glob(os.path.join(datadir, "*", "*.JPEG"))
    )
    tmp = os.path.join(root, "filelist.txt.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write("\n".join(files) + "\n")
    os.replace(tmp, os.path.join(root, "filelist.txt"))
    return len(files)


def _write_member(src: IO[bytes], dst: str) -> None:
    tmp = dst + ".part"
    with open(tmp, "wb") as out:
        while chunk := src.read(1 << 20):
            out.write(chunk)
    os.replace(tmp, dst)


def _safe_name(name: str) -> str:
    base = os.path.basename(name)  # members are written flat into one folder: no traversal
    if not base or base in (".", ".."):
        raise ValueError(f"unexpected tar member name {name!r}")
    return base


class _Progress:
    """Members finished so far (`<root>/.extracted`, one name per line)."""

    def __init__(self, root: str):
        self.path = os.path.join(root, _PROGRESS)
        self.done: set[str] = set()
        if os.path.isfile(self.path):
            with open(self.path, encoding="utf-8") as f:
                self.done = {ln for ln in f.read().splitlines() if ln}

    def add(self, name: str) -> None:
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(name + "\n")
        self.done.add(name)


def _extract_train(tar_path: str, datadir: str, progress: _Progress) -> None:
    total = os.path.getsize(tar_path)
    with (
        tarfile.open(tar_path, "r:") as outer,
        tqdm(total=total, unit="B", unit_scale=True, desc="extracting ILSVRC2012 train") as bar,
    ):
        for member in outer:
            bar.update(member.size + 512)
            if not member.isfile() or not member.name.endswith(".tar"):
                continue
            name = _safe_name(member.name)
            if name in progress.done:
                continue
            wnid = name[: -len(".tar")]
            classdir = os.path.join(datadir, wnid)
            os.makedirs(classdir, exist_ok=True)
            with tarfile.open(fileobj=outer.extractfile(member), mode="r|") as inner:
                for item in inner:
                    if item.isfile():
                        dst = os.path.join(classdir, _safe_name(item.name))
                        _write_member(inner.extractfile(item), dst)
            progress.add(name)


def _read_validation_synsets(root: str) -> dict[str, str]:
    path = os.path.join(root, VALIDATION_SYNSETS)
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"ImageNet validation: {path} is missing; the original downloaded this file "
            "(50,000 lines '<ILSVRC2012_val_xxxxxxxx.JPEG> <wnid>', 1,950,000 bytes): place it "
            "there to sort the extracted images into class folders"
        )
    with open(path, encoding="utf-8") as f:
        return dict(line.split() for line in f.read().splitlines() if line.strip())


def _extract_validation(tar_path: str, root: str, datadir: str, progress: _Progress) -> None:
    synsets = _read_validation_synsets(root)
    total = os.path.getsize(tar_path)
    with (
        tarfile.open(tar_path, "r:") as tar,
        tqdm(
            total=total, unit="B", unit_scale=True, desc="extracting ILSVRC2012 validation"
        ) as bar,
    ):
        for member in tar:
            bar.update(member.size + 512)
            if not member.isfile():
                continue
            name = _safe_name(member.name)
            if name in progress.done:
                continue
            if name not in synsets:
                raise ValueError(f"{tar_path}: {name} is not listed in {VALIDATION_SYNSETS}")
            classdir = os.path.join(datadir, synsets[name])
            os.makedirs(classdir, exist_ok=True)
            _write_member(tar.extractfile(member), os.path.join(classdir, name))
            progress.add(name)


def prepare(split: str, root: str | None = None) -> str:
    """Make `root` ready (see the module docstring); returns the root.

    Raises:
        FileNotFoundError: neither extracted images nor the tar are there.
    """
    info = SPLITS[split]
    root = root or cache_root(split)
    if is_prepared(root):
        return root
    datadir = os.path.join(root, "data")
    tar_path = os.path.join(root, info["tar"])
    progress_file = os.path.join(root, _PROGRESS)
    resuming = os.path.isfile(progress_file)
    if not os.path.isdir(datadir) or resuming:
        if not os.path.isfile(tar_path):
            raise FileNotFoundError(
                f"ImageNet {split} not found: place {info['tar']} ({info['size']:,} bytes) in "
                f"{root}, or the extracted images as {datadir}/<wnid>/*.JPEG (the original "
                "layout; set XDG_CACHE_HOME to use another cache folder)"
            )
        if os.path.getsize(tar_path) != info["size"]:
            logger.warning(
                "%s has %d bytes, the official tar %d: extracting it anyway",
                tar_path,
                os.path.getsize(tar_path),
                info["size"],
            )
        logger.info("%s %s into %s", "resuming" if resuming else "extracting", tar_path, datadir)
        os.makedirs(datadir, exist_ok=True)
        progress = _Progress(root)
        if not resuming:
            progress.add("")  # create the file: an interrupted run resumes
        if split == "train":
            _extract_train(tar_path, datadir, progress)
        else:
            _extract_validation(tar_path, root, datadir, progress)
        os.remove(progress_file)
    n = write_filelist(root)
    if n == 0:
        raise FileNotFoundError(f"ImageNet {split}: no {datadir}/<wnid>/*.JPEG files found")
    if n != info["length"]:
        logger.info("ImageNet %s: %d images (the full split has %d)", split, n, info["length"])
    Path(root, ".ready").touch()
    return root
