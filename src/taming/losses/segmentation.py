"""Binary cross-entropy losses for the segmentation VQGAN.

Used by `VQSegmentationModel` ("Taming Transformers", Esser et al., 2021), whose decoder predicts
per-class logits of a one-hot label map: `BCEWithLogits(prediction, target)` plus, for
`BCELossWithQuant`, the weighted quantizer loss.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["BCELoss", "BCELossWithQuant"]


class BCELoss(nn.Module):
    """`BCEWithLogits(prediction, target)`; returns `(loss, {})` like the original."""

    def forward(
        self, prediction: torch.Tensor, target: torch.Tensor
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return F.binary_cross_entropy_with_logits(prediction, target), {}


class BCELossWithQuant(nn.Module):
    """`BCEWithLogits(prediction, target) + codebook_weight * qloss`.

    Args:
        codebook_weight: weight of the quantizer loss.
    """

    def __init__(self, codebook_weight: float = 1.0) -> None:
        super().__init__()
        self.codebook_weight = codebook_weight

    def forward(
        self,
        qloss: torch.Tensor,
        target: torch.Tensor,
        prediction: torch.Tensor,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Loss and detached logs `{split}/total_loss, bce_loss, quant_loss`.

        Args:
            qloss: quantizer loss (scalar).
            target: one-hot labels (B, n_labels, H, W) as float.
            prediction: logits (B, n_labels, H, W).
            split: prefix of the log keys.
        """
        bce_loss = F.binary_cross_entropy_with_logits(prediction, target)
        loss = bce_loss + self.codebook_weight * qloss
        log = {
            f"{split}/total_loss": loss.detach().clone().mean(),
            f"{split}/bce_loss": bce_loss.detach().mean(),
            f"{split}/quant_loss": qloss.detach().mean(),
        }
        return loss, log
