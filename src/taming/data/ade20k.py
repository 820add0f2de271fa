"""ADE20K validation examples with label maps (original `taming/data/ade20k.py`).

`Examples(size=256, random_crop=False, interpolation="bicubic", root="data")`: the 30 examples
of `<root>/ade20k_examples.txt`, images `<root>/ade20k_images/*.jpg`, label maps
`<root>/ade20k_segmentations/*.png` (256x256), 151 labels (0 = other), no shift. `root`
defaults to the original's CWD-relative `data`. The full ADE20K datasets (`ADE20kTrain`,
`ADE20kValidation`) are not part of this module yet.
"""

from __future__ import annotations

import os

from taming.data.segmentation import SegmentationBase

__all__ = ["Examples"]


class Examples(SegmentationBase):
    """The shipped ADE20K examples.

    Args:
        size: shortest side and crop size; None keeps the original resolution.
        random_crop: random instead of center crop.
        interpolation: image resize filter.
        root: folder holding the original project's `data/` files.
    """

    def __init__(
        self,
        size: int | None = 256,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        root: str = "data",
    ):
        super().__init__(
            data_csv=os.path.join(root, "ade20k_examples.txt"),
            data_root=os.path.join(root, "ade20k_images"),
            segmentation_root=os.path.join(root, "ade20k_segmentations"),
            size=size,
            random_crop=random_crop,
            interpolation=interpolation,
            n_labels=151,
            shift_segmentation=False,
        )
