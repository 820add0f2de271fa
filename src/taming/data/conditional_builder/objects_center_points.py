"""Scene layout -> token sequence, one (category, center point) pair per object.

Original `taming/data/conditional_builder/objects_center_points.py` (scene-image synthesis,
"High-Resolution Complex Scene Synthesis with Transformers", Jahn, Rombach, Ommer, 2021).

Coordinates are quantised on an `n x n` grid, `n = int(sqrt(no_tokens))` (8192 -> 90):
`token(x, y) = round(y (n-1)) n + round(x (n-1))` (0..n^2-1). The padding token `none` is
`no_tokens - 1`. An object is `category_no + no_object_classes * modifier` with modifier bits
1 = group-of (if `use_group_parameter`), 2 = occluded, 4 = depiction, 8 = inside (if
`use_additional_parameters`). `build` returns `no_max_objects * descriptor_length` tokens
(+ 2 crop tokens with `encode_crop`) as a LongTensor.

NOTE: the original shuffles the annotations with the global `random` module on every
`build` (also at validation/sampling time). That is the default here too; pass `rng` (a
`random.Random` or an int seed) for reproducible orders. The caller's list is not mutated.
"""

from __future__ import annotations

import logging
import math
import random
from collections.abc import Callable, Sequence
from itertools import cycle
from typing import Any

import numpy as np
import torch
from PIL import Image, ImageDraw

from taming.data.conditional_builder.utils import (
    BLACK,
    COLOR_PALETTE,
    FULL_CROP,
    GRAY_75,
    WHITE,
    absolute_bbox,
    additional_parameters_string,
    draw_text,
    filter_annotations,
    get_circle_size,
    get_plot_font_size,
    horizontally_flip_bbox,
    load_font,
    ordered_box,
    pad_list,
    rescale_annotations,
)
from taming.data.helper_types import Annotation, BoundingBox

logger = logging.getLogger(__name__)

__all__ = ["ObjectsCenterPointsConditionalBuilder"]


class ObjectsCenterPointsConditionalBuilder:
    """Tokenise a list of `Annotation`s (with an optional crop box) and back.

    Args:
        no_object_classes: number of categories (category_no ranges over 0..N-1).
        no_max_objects: objects per sequence (longer lists are truncated, shorter padded).
        no_tokens: vocabulary size of the coordinate/category tokens (e.g. 8192).
        encode_crop: keep boxes in full-image coordinates and append the crop box
            (top-left and bottom-right tokens); otherwise express boxes relative to the crop.
        use_group_parameter: encode the group-of flag in the category token.
        use_additional_parameters: encode the occluded/depiction/inside flags.
        rng: source of the per-build shuffle: None (the global `random`, as the original),
            a `random.Random`, or an int seed for a private `random.Random`.
    """

    object_descriptor_length = 2

    def __init__(
        self,
        no_object_classes: int,
        no_max_objects: int,
        no_tokens: int,
        encode_crop: bool,
        use_group_parameter: bool,
        use_additional_parameters: bool,
        rng: random.Random | int | None = None,
    ):
        self.no_object_classes = no_object_classes
        self.no_max_objects = no_max_objects
        self.no_tokens = no_tokens
        self.encode_crop = encode_crop
        self.no_sections = int(math.sqrt(no_tokens))
        self.use_group_parameter = use_group_parameter
        self.use_additional_parameters = use_additional_parameters
        self.rng: Any = random.Random(rng) if isinstance(rng, int) else (rng or random)
        max_modifier = (1 if use_group_parameter else 0) + (14 if use_additional_parameters else 0)
        if no_object_classes * (max_modifier + 1) > self.none:
            raise ValueError(
                f"{no_object_classes} classes with these modifiers do not fit in {no_tokens} tokens"
            )

    @property
    def none(self) -> int:
        """Padding token (`no_tokens - 1`)."""
        return self.no_tokens - 1

    @property
    def embedding_dim(self) -> int:
        """Length of a built sequence."""
        extra_length = 2 if self.encode_crop else 0
        return self.no_max_objects * self.object_descriptor_length + extra_length

    # -- coordinates ---------------------------------------------------------------------

    def tokenize_coordinates(self, x: float, y: float) -> int:
        """Token of the grid point nearest to (x, y) in [0, 1]^2."""
        n = self.no_sections
        x_discrete = int(round(x * (n - 1)))
        y_discrete = int(round(y * (n - 1)))
        return y_discrete * n + x_discrete

    def coordinates_from_token(self, token: int) -> tuple[float, float]:
        """(x, y) in [0, 1]^2 of a coordinate token."""
        n = self.no_sections
        return (token % n) / (n - 1), (token // n) / (n - 1)

    def bbox_from_token_pair(self, token1: int, token2: int) -> BoundingBox:
        """(x0, y0, w, h) from top-left and bottom-right tokens."""
        x0, y0 = self.coordinates_from_token(token1)
        x1, y1 = self.coordinates_from_token(token2)
        return x0, y0, x1 - x0, y1 - y0

    def token_pair_from_bbox(self, bbox: BoundingBox) -> tuple[int, int]:
        """Top-left and bottom-right tokens of an (x0, y0, w, h) box."""
        return (
            self.tokenize_coordinates(bbox[0], bbox[1]),
            self.tokenize_coordinates(bbox[0] + bbox[2], bbox[1] + bbox[3]),
        )

    # -- categories ----------------------------------------------------------------------

    def object_representation(self, annotation: Annotation) -> int:
        """Category token: `category_no + no_object_classes * modifier bits`."""
        modifier = 0
        if self.use_group_parameter:
            modifier |= 1 * (annotation.is_group_of is True)
        if self.use_additional_parameters:
            modifier |= 2 * (annotation.is_occluded is True)
            modifier |= 4 * (annotation.is_depiction is True)
            modifier |= 8 * (annotation.is_inside is True)
        return annotation.category_no + self.no_object_classes * modifier

    def representation_to_annotation(self, representation: int) -> Annotation:
        """Partial `Annotation` (category_no and flags only) of a category token."""
        category_no = representation % self.no_object_classes
        modifier = representation // self.no_object_classes
        extra = self.use_additional_parameters
        return Annotation(
            area=None,
            image_id=None,
            bbox=None,
            category_id=None,
            id=None,
            source=None,
            confidence=None,
            category_no=category_no,
            is_group_of=bool((modifier & 1) and self.use_group_parameter),
            is_occluded=bool((modifier & 2) and extra),
            is_depiction=bool((modifier & 4) and extra),
            is_inside=bool((modifier & 8) and extra),
        )

    # -- build / inverse -----------------------------------------------------------------

    def _crop_encoder(self, crop_coordinates: BoundingBox) -> list[int]:
        return list(self.token_pair_from_bbox(crop_coordinates))

    def _make_object_descriptors(self, annotations: Sequence[Annotation]) -> list[tuple[int, ...]]:
        object_tuples = [
            (
                self.object_representation(a),
                self.tokenize_coordinates(a.bbox[0] + a.bbox[2] / 2, a.bbox[1] + a.bbox[3] / 2),
            )
            for a in annotations
        ]
        return pad_list(object_tuples, (self.none, self.none), self.no_max_objects)

    def build(
        self,
        annotations: Sequence[Annotation],
        crop_coordinates: BoundingBox | None = None,
        horizontal_flip: bool = False,
    ) -> torch.Tensor:
        """Token sequence of a layout.

        Args:
            annotations: objects with relative boxes in full-image coordinates.
            crop_coordinates: the crop (x0, y0, w, h) the image was cut to; None = full image.
            horizontal_flip: whether the image was mirrored.

        Returns:
            LongTensor (embedding_dim,).
        """
        if not isinstance(annotations, list):
            annotations = list(annotations)
        # as the original, a list passed in is shuffled in place (datasets pass a copy)
        if len(annotations) == 0:
            logger.warning("building a layout without annotations")
        if len(annotations) > self.no_max_objects:
            logger.warning(
                "received %d annotations, keeping the first %d",
                len(annotations),
                self.no_max_objects,
            )
            annotations = annotations[: self.no_max_objects]
        if not crop_coordinates:
            crop_coordinates = FULL_CROP
        self.rng.shuffle(annotations)
        annotations = filter_annotations(annotations, crop_coordinates)
        if self.encode_crop:
            annotations = rescale_annotations(annotations, FULL_CROP, horizontal_flip)
            if horizontal_flip:
                crop_coordinates = horizontally_flip_bbox(crop_coordinates)
            extra = self._crop_encoder(crop_coordinates)
        else:
            annotations = rescale_annotations(annotations, crop_coordinates, horizontal_flip)
            extra = []
        object_tuples = self._make_object_descriptors(annotations)
        flattened = [token for tuple_ in object_tuples for token in tuple_] + extra
        if len(flattened) != self.embedding_dim:
            raise AssertionError(f"built {len(flattened)} tokens, expected {self.embedding_dim}")
        if not all(0 <= value < self.no_tokens for value in flattened):
            raise ValueError(f"token out of range [0, {self.no_tokens}): {flattened}")
        return torch.tensor(flattened, dtype=torch.long)

    def _split(self, conditional: Any) -> tuple[list[int], BoundingBox | None]:
        if isinstance(conditional, torch.Tensor):
            values = conditional.detach().cpu().flatten().tolist()  # also CUDA tensors
        else:
            values = np.asarray(conditional).flatten().tolist()
        if len(values) != self.embedding_dim:
            raise ValueError(f"expected {self.embedding_dim} tokens, got {len(values)}")
        crop_coordinates = None
        if self.encode_crop:
            crop_coordinates = self.bbox_from_token_pair(values[-2], values[-1])
            values = values[:-2]
        return values, crop_coordinates

    def _descriptors(self, values: list[int]) -> list[list[int]]:
        k = self.object_descriptor_length
        return [values[i : i + k] for i in range(0, len(values), k)]

    def inverse_build(
        self, conditional: torch.Tensor
    ) -> tuple[list[tuple[int, tuple[float, float]]], BoundingBox | None]:
        """Decode a sequence: ([(category token, (x, y) center)], crop box or None)."""
        values, crop_coordinates = self._split(conditional)
        objects = [
            (d[0], self.coordinates_from_token(d[1]))
            for d in self._descriptors(values)
            if d[0] != self.none
        ]
        return objects, crop_coordinates

    # -- plot ----------------------------------------------------------------------------

    def _label(self, representation: int, label_for_category_no: Callable[[int], str]) -> str:
        annotation = self.representation_to_annotation(representation)
        flags = additional_parameters_string(annotation)
        label = label_for_category_no(annotation.category_no)
        return f"{label} {flags}" if flags else label

    def plot(
        self,
        conditional: torch.Tensor,
        label_for_category_no: Callable[[int], str],
        figure_size: tuple[int, int],
        line_width: int = 3,
        font_size: int | None = None,
    ) -> torch.Tensor:
        """Draw the layout (labelled center points, crop box) on a white canvas.

        Args:
            conditional: a built sequence.
            label_for_category_no: category_no -> text.
            figure_size: canvas (width, height).
            line_width: crop-box outline width.
            font_size: label size (default by figure size).

        Returns:
            float32 tensor (3, height, width) in [-1, 1].
        """
        canvas = Image.new("RGB", tuple(figure_size), WHITE)
        draw = ImageDraw.Draw(canvas)
        circle_size = get_circle_size(figure_size)
        font = load_font(get_plot_font_size(font_size, figure_size))
        width, height = canvas.size
        description, crop_coordinates = self.inverse_build(conditional)
        for (representation, (x, y)), color in zip(description, cycle(COLOR_PALETTE)):
            x_abs, y_abs = x * width, y * height
            ellipse = [
                x_abs - circle_size,
                y_abs - circle_size,
                x_abs + circle_size,
                y_abs + circle_size,
            ]
            draw.ellipse(ellipse, fill=color, width=0)
            label = self._label(representation, label_for_category_no)
            draw_text(draw, (x_abs, y_abs), label, anchor="md", fill=BLACK, font=font)
        if crop_coordinates is not None:
            box = ordered_box(absolute_bbox(crop_coordinates, width, height))
            draw.rectangle(box, outline=GRAY_75, width=line_width)
        return pil_to_signed_tensor(canvas)


def pil_to_signed_tensor(img: Image.Image) -> torch.Tensor:
    """RGB PIL image -> float32 tensor (3, H, W) in [-1, 1]."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float32)  # (H, W, 3)
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous()
