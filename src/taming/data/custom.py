"""Custom image data of the original `taming/data/custom.py`: `CustomTrain` / `CustomTest`.

`CustomTrain(size, training_images_list_file)` and `CustomTest(size, test_images_list_file)`
read a text file with one image path per line (`configs/custom_vqgan.yaml`) and return
`{"image", "file_path_"}` exactly as the original `ImagePaths`: shortest side -> `size` and a
center crop (no random crop and no flip, even for training), and `file_path_` is the line of
the list **as written** (relative paths stay relative). Blank lines and lines starting with "#"
are skipped. A relative path is opened relative to the current directory, as the original did;
if nothing is there, relative to the list file's folder. A folder may be given instead of a list
(its .png/.jpg/.jpeg files, sorted, as later versions of the original allowed).
`random_crop` / `random_flip` switch those augmentations on.
"""

from __future__ import annotations

import os

from taming.data.base import ImagePaths

__all__ = ["CustomBase", "CustomTest", "CustomTrain", "read_list"]


def read_list(list_file: str) -> tuple[list[str], list[str]]:
    """(paths as listed, paths to open) of a list file or a folder.

    Raises:
        FileNotFoundError: the list file / folder does not exist.
        ValueError: it lists no images.
    """
    if os.path.isdir(list_file):
        names = sorted(
            n for n in os.listdir(list_file) if n.lower().endswith((".png", ".jpg", ".jpeg"))
        )
        listed = [os.path.join(list_file, n) for n in names]
        opened = listed
    elif os.path.isfile(list_file):
        with open(list_file, encoding="utf-8") as f:
            listed = [ln.strip() for ln in f.read().splitlines()]
        listed = [p for p in listed if p and not p.startswith("#")]
        base = os.path.dirname(os.path.abspath(list_file))
        opened = []
        for p in listed:
            q = os.path.expanduser(p)
            if not os.path.isabs(q) and not os.path.exists(q):
                alt = os.path.join(base, q)
                q = alt if os.path.exists(alt) else q
            opened.append(q)
    else:
        raise FileNotFoundError(f"image list file not found: {list_file}")
    if not listed:
        raise ValueError(f"image list file {list_file} lists no images")
    return listed, opened


class CustomBase(ImagePaths):
    """Shared implementation of `CustomTrain` / `CustomTest`."""

    def __init__(self, size: int, list_file: str, random_crop: bool, random_flip: bool):
        listed, self.open_paths = read_list(list_file)
        super().__init__(listed, size=size, random_crop=random_crop, random_flip=random_flip)

    def _load_example(self, i: int) -> dict:
        example = {"image": self.preprocess_image(self.open_paths[i])}
        for key, values in self.labels.items():
            example[key] = values[i]
        return example


class CustomTrain(CustomBase):
    """Training images from a list file.

    Args:
        size: shortest side -> size, then a size x size crop.
        training_images_list_file: text file, one image path per line (or a folder).
        random_crop: random instead of center crop (the original: center).
        random_flip: mirror left-right with probability 0.5 (the original: never).
    """

    def __init__(
        self,
        size: int,
        training_images_list_file: str,
        random_crop: bool = False,
        random_flip: bool = False,
    ):
        super().__init__(size, training_images_list_file, random_crop, random_flip)


class CustomTest(CustomBase):
    """Test/validation images from a list file (center crop).

    Args:
        size: shortest side -> size, then a size x size center crop.
        test_images_list_file: text file, one image path per line (or a folder).
        random_crop: random instead of center crop (the original: center).
        random_flip: mirror left-right with probability 0.5 (the original: never).
    """

    def __init__(
        self,
        size: int,
        test_images_list_file: str,
        random_crop: bool = False,
        random_flip: bool = False,
    ):
        super().__init__(size, test_images_list_file, random_crop, random_flip)
