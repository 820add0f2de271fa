"""ADE20K validation examples with label maps (original `taming/data/ade20k.py`).

`Examples(size=256, random_crop=False, interpolation="bicubic", root="data")`: the 30 examples
of `<root>/ade20k_examples.txt`, images `<root>/ade20k_images/*.jpg`, label maps
`<root>/ade20k_segmentations/*.png` (256x256), 151 labels (0 = other), no shift. `root`
defaults to the original's CWD-relative `data`. The full ADE20K datasets (`ADE20kTrain`,
`ADE20kValidation`) are not part of this module yet.
"""

from __future__ import annotations

from taming.data.segmentation import ShippedExamples

__all__ = ["Examples"]


class Examples(ShippedExamples):
    """The shipped ADE20K examples (arguments: `ShippedExamples`)."""

    name, n_labels, shift_segmentation = "ade20k", 151, False
