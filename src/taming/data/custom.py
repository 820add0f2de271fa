"""Custom image data of the original `taming/data/custom.py`: `CustomTrain` / `CustomTest`.

`CustomTrain(size, training_images_list_file)` and `CustomTest(size, test_images_list_file)`
read a text file with one image path per line (`configs/custom_vqgan.yaml`) and return
`{"image", "file_path_"}` with shortest side -> `size` and a center crop, as the original
(no random crop and no flip, even for training). `random_crop` / `random_flip` switch those on.
Relative paths in the list are resolved as `taming.data.folder.read_image_list` documents
(list file's folder first, then the current directory); a folder may be given instead of a
list file.
"""

from __future__ import annotations

from taming.data.folder import ImageFolderDataset

__all__ = ["CustomBase", "CustomTest", "CustomTrain"]


class CustomBase(ImageFolderDataset):
    """Shared implementation of `CustomTrain` / `CustomTest`."""


class CustomTrain(CustomBase):
    """Training images from a list file.

    Args:
        size: shortest side -> size, then a size x size crop.
        training_images_list_file: text file, one image path per line.
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
        super().__init__(
            training_images_list_file, size=size, random_crop=random_crop, random_flip=random_flip
        )


class CustomTest(CustomBase):
    """Test/validation images from a list file (center crop).

    Args:
        size: shortest side -> size, then a size x size center crop.
        test_images_list_file: text file, one image path per line.
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
        super().__init__(
            test_images_list_file, size=size, random_crop=random_crop, random_flip=random_flip
        )
