"""COCO-Stuff examples with stuff+thing label maps (original `taming/data/coco.py`).

`Examples(size=256, random_crop=False, interpolation="bicubic", root="data")`: the 35
examples of `<root>/coco_examples.txt`, images `<root>/coco_images/*.jpg`, label maps
`<root>/coco_segmentations/*.png` (255 = unlabeled), 183 labels with `shift_segmentation`
(labels + 1, so "unlabeled" becomes 0). `root` defaults to the original's CWD-relative
`data`.

The full captioned COCO datasets (`CocoImagesAndCaptionsTrain/Validation`, used by
`configs/coco_cond_stage.yaml`) are not available yet: constructing them raises
`NotImplementedError` with a pointer to what exists.
"""

from __future__ import annotations

from typing import Any, NoReturn

from taming.data.segmentation import ShippedExamples

__all__ = ["CocoImagesAndCaptionsTrain", "CocoImagesAndCaptionsValidation", "Examples"]


class Examples(ShippedExamples):
    """The shipped COCO-Stuff examples (arguments: `ShippedExamples`)."""

    name, n_labels, shift_segmentation = "coco", 183, True


def _not_available(name: str) -> NoReturn:
    raise NotImplementedError(
        f"taming.data.coco.{name} (full COCO-Stuff with captions) is not available yet; "
        "use taming.data.coco.Examples for the shipped examples or "
        "taming.data.segmentation.SegmentationBase with your own file list"
    )


class CocoImagesAndCaptionsTrain:
    """Placeholder: the full COCO-Stuff training set is not available yet."""

    def __init__(self, *args: Any, **kwargs: Any):
        _not_available(type(self).__name__)


class CocoImagesAndCaptionsValidation:
    """Placeholder: the full COCO-Stuff validation set is not available yet."""

    def __init__(self, *args: Any, **kwargs: Any):
        _not_available(type(self).__name__)
