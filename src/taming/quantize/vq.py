"""Vector quantizer with a straight-through estimator (VQ-VAE codebook).

"Neural Discrete Representation Learning" (van den Oord et al., 2017), as used by VQGAN
("Taming Transformers", Esser et al., 2021): nearest-codebook lookup, codebook and commitment
losses, straight-through gradients. Matches the original `VectorQuantizer2` (parameter
`embedding.weight`, shape (n_e, e_dim)).

NOTE (legacy beta): the original applies `beta` to the wrong term. With `legacy=True` (the
default, what every released checkpoint was trained with) the loss is
`||sg[z_q] - z||^2 + beta * ||z_q - sg[z]||^2` (commitment weight 1, codebook weight beta);
`legacy=False` gives the VQ-VAE paper's `beta * ||sg[z_q] - z||^2 + ||z_q - sg[z]||^2`.
The forward value is the same, `(1 + beta) * mse`; only the gradients differ.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput, RemapMixin

__all__ = ["VectorQuantizer", "nearest_code"]


def nearest_code(z_flat: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """argmin_j ||z_i - e_j||^2 for z_flat (N, D) and codebook (K, D); first index wins ties.

    Distances are `||z||^2 + ||e||^2 - 2 z.e` in the input dtype, the original's arithmetic.
    """
    d = torch.addmm(
        z_flat.pow(2).sum(dim=1, keepdim=True) + codebook.pow(2).sum(dim=1),
        z_flat,
        codebook.t(),
        alpha=-2.0,
    )  # (N, K)
    return torch.argmin(d, dim=1)


class VectorQuantizer(RemapMixin, nn.Module):
    """Nearest-neighbour quantizer over a learned codebook.

    Args:
        n_e: number of codes K.
        e_dim: code dimension D.
        beta: commitment/codebook weighting (see the module note).
        remap: optional `.npy` with the used code ids (indices are then positions in it).
        unknown_index: `"random"`, `"extra"` or an int, for codes outside `remap`.
        sane_index_shape: return indices as (B, H, W) instead of flat (B*H*W,).
        legacy: keep the original's beta placement (default, needed for old checkpoints).
    """

    def __init__(
        self,
        n_e: int,
        e_dim: int,
        beta: float = 0.25,
        remap: str | None = None,
        unknown_index: str | int = "random",
        sane_index_shape: bool = False,
        legacy: bool = True,
    ) -> None:
        super().__init__()
        self.n_e = n_e
        self.e_dim = e_dim
        self.beta = beta
        self.legacy = legacy
        self.sane_index_shape = sane_index_shape
        self.embedding = nn.Embedding(n_e, e_dim)
        self.embedding.weight.data.uniform_(-1.0 / n_e, 1.0 / n_e)
        self._init_remap(n_e, remap, unknown_index)

    @property
    def vocab_size(self) -> int:
        """Number of code ids (`len(used)` (+1) when remapped, else `n_e`)."""
        return self.re_embed

    @property
    def embed_dim(self) -> int:
        return self.e_dim

    def codebook_loss(self, z: torch.Tensor, z_q: torch.Tensor) -> torch.Tensor:
        """Commitment + codebook loss with the configured beta placement."""
        commit = F.mse_loss(z, z_q.detach())
        codebook = F.mse_loss(z_q, z.detach())
        if self.legacy:
            return commit + self.beta * codebook
        return self.beta * commit + codebook

    def forward(
        self,
        z: torch.Tensor,
        temp: float | None = None,
        rescale_logits: bool = False,
        return_logits: bool = False,
    ) -> QuantizeOutput:
        """Quantize z (B, C, H, W). The extra arguments exist for interface compatibility."""
        if temp not in (None, 1.0) or rescale_logits or return_logits:
            raise ValueError("VectorQuantizer has no temperature, logit rescaling or logits")
        b, _, h, w = z.shape
        z_bhwc = rearrange(z, "b c h w -> b h w c").contiguous()
        z_flat = z_bhwc.view(-1, self.e_dim)  # (B*H*W, D), row-major over (b, h, w)
        indices = nearest_code(z_flat, self.embedding.weight)
        z_q = self.embedding(indices).view(z_bhwc.shape)  # (B, H, W, D)

        loss = self.codebook_loss(z_bhwc, z_q)
        z_q = z_bhwc + (z_q - z_bhwc).detach()  # straight-through
        z_q = rearrange(z_q, "b h w c -> b c h w").contiguous()

        if self.remap is not None:
            indices = self.remap_to_used(indices.view(b, -1)).reshape(-1)
        if self.sane_index_shape:
            indices = indices.view(b, h, w)
        return QuantizeOutput(z_q, loss, QuantizeInfo(None, None, indices))

    def get_codebook_entry(
        self, indices: torch.Tensor, shape: tuple[int, int, int, int] | None
    ) -> torch.Tensor:
        """Look up codes; with `shape=(B, H, W, D)` return them as (B, D, H, W)."""
        if self.remap is not None:
            if shape is None:
                raise ValueError("remapped indices need `shape` to recover the batch axis")
            indices = self.unmap_to_all(indices.reshape(shape[0], -1)).reshape(-1)
        z_q = self.embedding(indices)
        if shape is not None:
            z_q = z_q.view(shape).permute(0, 3, 1, 2).contiguous()  # (B, H, W, D) -> (B, D, H, W)
        return z_q
