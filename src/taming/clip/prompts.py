"""Weighted prompts and the spherical-distance loss of VQGAN+CLIP.

A prompt string `"a red bird|sky:0.5|blurry:-1"` is a list of `(text, weight)` pairs; a
negative weight pushes the image away from that text. The loss between unit embeddings `a`
and `b` is the squared great-circle distance `2 * arcsin(|a - b| / 2) ** 2` (Crowson et al.,
"VQGAN-CLIP", 2022), averaged over cutouts and summed over prompts with their weights.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from taming.config import ConfigError

__all__ = ["Prompt", "parse_image_prompt", "parse_prompts", "spherical_distance", "weighted_loss"]


@dataclass(frozen=True)
class Prompt:
    """One target: a text (or an image file's path) and its weight."""

    text: str
    weight: float = 1.0


def _split_weight(item: str) -> tuple[str, float]:
    head, sep, tail = item.rpartition(":")
    if sep:
        try:
            return head.strip(), float(tail)
        except ValueError:
            pass  # a colon inside the text
    return item.strip(), 1.0


def parse_prompts(spec: str) -> list[Prompt]:
    """`"a|b:0.5|c:-1"` -> `[Prompt("a", 1.0), Prompt("b", 0.5), Prompt("c", -1.0)]`."""
    prompts = []
    for item in spec.split("|"):
        text, weight = _split_weight(item)
        if not text:
            raise ConfigError(f"empty prompt in {spec!r} (use 'text[:weight]|text[:weight]')")
        if not torch.isfinite(torch.tensor(weight)):
            raise ConfigError(f"prompt weight must be finite, got {weight} in {spec!r}")
        prompts.append(Prompt(text, weight))
    return prompts


def parse_image_prompt(spec: str) -> Prompt:
    """`"photo.png"` or `"photo.png:0.5"` -> a prompt whose text is the file's path."""
    path, weight = _split_weight(spec)
    return Prompt(path, weight)


def spherical_distance(a: Tensor, b: Tensor) -> Tensor:
    """Squared great-circle distance between the unit vectors of `a (N, D)` and `b (T, D)`.

    Returns `(N, T)`: `2 * arcsin(|a_n - b_t| / 2) ** 2` after normalising both.
    """
    a = torch.nn.functional.normalize(a, dim=-1)
    b = torch.nn.functional.normalize(b, dim=-1)
    chord = (a[:, None, :] - b[None, :, :]).norm(dim=-1)  # (N, T), in [0, 2]
    return 2.0 * torch.arcsin((chord / 2.0).clamp(max=1.0)) ** 2


def weighted_loss(embeds: Tensor, targets: Tensor, weights: Tensor) -> Tensor:
    """`sum_t weight_t * mean_n d(embed_n, target_t)`: embeds `(N, D)`, targets `(T, D)`."""
    return (spherical_distance(embeds, targets).mean(0) * weights.to(embeds)).sum()
