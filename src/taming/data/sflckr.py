"""S-FLCKR landscape examples with COCO-Stuff label maps (original `taming/data/sflckr.py`).

`Examples(size=None, random_crop=False, interpolation="bicubic", root="data")`: the 25
examples of `<root>/sflckr_examples.txt`, images `<root>/sflckr_images/<tag>/*.jpg`, label
maps `<root>/sflckr_segmentations/<tag>/*.png` (DeepLab-v2 COCO-Stuff labels 0..181),
182 labels, no shift. `root` defaults to the original's CWD-relative `data`. The full
S-FLCKR dataset (107,625 Flickr/Reddit landscapes) was never distributed.

`SegmentationBase` lives in `taming.data.segmentation` and is re-exported here under its
original path.
"""

from __future__ import annotations

import os

from taming.data.segmentation import SegmentationBase

__all__ = ["Examples", "SegmentationBase"]


class Examples(SegmentationBase):
    """The shipped S-FLCKR examples.

    Args:
        size: shortest side and crop size; None keeps the original resolution.
        random_crop: random instead of center crop.
        interpolation: image resize filter.
        root: folder holding the original project's `data/` files.
    """

    def __init__(
        self,
        size: int | None = None,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        root: str = "data",
    ):
        super().__init__(
            data_csv=os.path.join(root, "sflckr_examples.txt"),
            data_root=os.path.join(root, "sflckr_images"),
            segmentation_root=os.path.join(root, "sflckr_segmentations"),
            size=size,
            random_crop=random_crop,
            interpolation=interpolation,
            n_labels=182,
            shift_segmentation=False,
        )
