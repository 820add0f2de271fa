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

from taming.data.segmentation import SegmentationBase, ShippedExamples

__all__ = ["Examples", "SegmentationBase"]


class Examples(ShippedExamples):
    """The shipped S-FLCKR examples (arguments: `ShippedExamples`; full resolution by
    default)."""

    name, n_labels, shift_segmentation = "sflckr", 182, False

    def __init__(
        self,
        size: int | None = None,
        random_crop: bool = False,
        interpolation: str = "bicubic",
        root: str = "data",
    ):
        super().__init__(size, random_crop, interpolation, root)
