"""VQ autoencoder for one-hot segmentation maps (the cond stage of semantic image synthesis).

"Taming Transformers" (Esser et al., 2021), section 4.1: segmentation maps are tokenised by a
VQGAN-like autoencoder trained with a binary cross-entropy reconstruction loss
(`BCELossWithQuant`) and no discriminator. Input: one-hot (B, n_labels, H, W); the decoder
outputs per-label logits.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F

from taming.autoencoder.vqmodel import VQModel

__all__ = ["VQSegmentationModel"]


class VQSegmentationModel(VQModel):
    """`VQModel` over one-hot label maps, with a `colorize` projection for display.

    Args:
        n_labels: number of segmentation classes (channels of the one-hot input).
        (all other arguments as `VQModel`; `image_key` is usually `"segmentation"`)

    As in the original, the `colorize` buffer is registered after `ckpt_path` is loaded, so a
    cond-stage checkpoint keeps the fresh projection while a full transformer checkpoint
    restores it.
    """

    def __init__(
        self,
        n_labels: int,
        ddconfig: dict,
        lossconfig: dict | None,
        n_embed: int,
        embed_dim: int,
        ckpt_path: str | None = None,
        ignore_keys: Sequence[str] = (),
        image_key: str = "segmentation",
        colorize_nlabels: int | None = None,
        monitor: str | None = None,
        remap: str | None = None,
        sane_index_shape: bool = False,
    ) -> None:
        super().__init__(
            ddconfig=ddconfig,
            lossconfig=lossconfig,
            n_embed=n_embed,
            embed_dim=embed_dim,
            ckpt_path=ckpt_path,
            ignore_keys=ignore_keys,
            image_key=image_key,
            colorize_nlabels=None,
            monitor=monitor,
            remap=remap,
            sane_index_shape=sane_index_shape,
        )
        del colorize_nlabels  # the projection always has n_labels inputs
        self.n_labels = n_labels
        self.register_buffer("colorize", torch.randn(3, n_labels, 1, 1))

    @torch.no_grad()
    def log_images(self, batch: Mapping[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        """Colourised inputs and argmax reconstructions."""
        x = self.get_input(batch).to(self.get_last_layer().device)
        xrec, _ = self(x)
        if x.shape[1] > 3:
            xrec = F.one_hot(xrec.argmax(dim=1), num_classes=xrec.shape[1])
            xrec = xrec.permute(0, 3, 1, 2).float()  # (B, H, W, K) -> (B, K, H, W)
            x, xrec = self.to_rgb(x), self.to_rgb(xrec)
        return {"inputs": x, "reconstructions": xrec}
