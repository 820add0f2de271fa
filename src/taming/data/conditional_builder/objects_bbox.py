"""Scene layout -> token sequence, one (category, top-left, bottom-right) triple per object.

Original `taming/data/conditional_builder/objects_bbox.py`: like the center-point builder
(`objects_center_points.py`, same constructor, quantisation, shuffling and crop handling) but
every object is `(category token, token(x0, y0), token(x0 + w, y0 + h))`, padded with
`(none, none, none)`. With 30 objects and `encode_crop`: `30 * 3 + 2 = 92` tokens, which with
256 image tokens gives the scene transformers' `block_size` of 348.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from itertools import cycle

import torch
from PIL import Image, ImageDraw

from taming.data.conditional_builder.objects_center_points import (
    ObjectsCenterPointsConditionalBuilder,
    pil_to_signed_tensor,
)
from taming.data.conditional_builder.utils import (
    BLACK,
    COLOR_PALETTE,
    GRAY_75,
    WHITE,
    absolute_bbox,
    draw_text,
    get_plot_font_size,
    load_font,
    ordered_box,
    pad_list,
)
from taming.data.helper_types import Annotation, BoundingBox

__all__ = ["ObjectsBoundingBoxConditionalBuilder"]


class ObjectsBoundingBoxConditionalBuilder(ObjectsCenterPointsConditionalBuilder):
    """Tokenise objects as (category, box corners); see `ObjectsCenterPointsConditionalBuilder`."""

    object_descriptor_length = 3

    def _make_object_descriptors(self, annotations: Sequence[Annotation]) -> list[tuple[int, ...]]:
        object_triples = [
            (self.object_representation(a), *self.token_pair_from_bbox(a.bbox)) for a in annotations
        ]
        return pad_list(object_triples, (self.none, self.none, self.none), self.no_max_objects)

    def inverse_build(
        self, conditional: torch.Tensor
    ) -> tuple[list[tuple[int, BoundingBox]], BoundingBox | None]:
        """Decode a sequence: ([(category token, (x0, y0, w, h))], crop box or None)."""
        values, crop_coordinates = self._split(conditional)
        objects = [
            (d[0], self.bbox_from_token_pair(d[1], d[2]))
            for d in self._descriptors(values)
            if d[0] != self.none
        ]
        return objects, crop_coordinates

    def plot(
        self,
        conditional: torch.Tensor,
        label_for_category_no: Callable[[int], str],
        figure_size: tuple[int, int],
        line_width: int = 3,
        font_size: int | None = None,
    ) -> torch.Tensor:
        """Draw the layout (labelled boxes, crop box) on a white canvas.

        Args:
            conditional: a built sequence.
            label_for_category_no: category_no -> text.
            figure_size: canvas (width, height).
            line_width: box outline width.
            font_size: label size (default by figure size).

        Returns:
            float32 tensor (3, height, width) in [-1, 1].
        """
        canvas = Image.new("RGB", tuple(figure_size), WHITE)
        draw = ImageDraw.Draw(canvas)
        font = load_font(get_plot_font_size(font_size, figure_size))
        width, height = canvas.size
        description, crop_coordinates = self.inverse_build(conditional)
        for (representation, bbox), color in zip(description, cycle(COLOR_PALETTE)):
            x0, y0, x1, y1 = ordered_box(absolute_bbox(bbox, width, height))
            draw.rectangle((x0, y0, x1, y1), outline=color, width=line_width)
            label = self._label(representation, label_for_category_no)
            xy = (x0 + line_width, y0 + line_width)
            draw_text(draw, xy, label, anchor="la", fill=BLACK, font=font)
        if crop_coordinates is not None:
            box = ordered_box(absolute_bbox(crop_coordinates, width, height))
            draw.rectangle(box, outline=GRAY_75, width=line_width)
        return pil_to_signed_tensor(canvas)
