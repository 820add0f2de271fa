"""Gumbel-softmax quantizer (categorical reparameterisation over the codebook).

"Categorical Reparameterization with Gumbel-Softmax" (Jang et al., 2017), as used by DALL-E's
dVAE and by the Gumbel VQGAN of "Taming Transformers". A 1x1 conv `proj` predicts logits over
the K codes; a (hard, straight-through in training) Gumbel-softmax sample mixes the codebook
`embed`; a KL term to the uniform prior regularises the logits.

Differences from the original, each a fix: in eval mode the code is the argmax of the logits
(deterministic; `stochastic_eval=True` restores the original's noisy encoding), and `proj`
takes the `embed_dim` channels that VQGAN's `quant_conv` actually produces.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput, RemapMixin

__all__ = ["GumbelQuantize"]


class GumbelQuantize(RemapMixin, nn.Module):
    """Gumbel-softmax quantizer.

    Args:
        num_hiddens: input channels of `proj`.
        embedding_dim: code dimension D.
        n_embed: number of codes K.
        straight_through: hard one-hot samples with straight-through gradients in training.
        kl_weight: weight of the KL(q || uniform) term.
        temp_init: initial temperature (a plain attribute, not saved; set by a schedule).
        use_vqinterface: return `(z_q, loss, (None, None, ind))` instead of `(z_q, loss, ind)`.
        remap: optional `.npy` of used code ids (see `RemapMixin`).
        unknown_index: handling of codes outside `remap`.
        stochastic_eval: sample Gumbel noise in eval mode too (the original's behaviour).
    """

    def __init__(
        self,
        num_hiddens: int,
        embedding_dim: int,
        n_embed: int,
        straight_through: bool = True,
        kl_weight: float = 5e-4,
        temp_init: float = 1.0,
        use_vqinterface: bool = True,
        remap: str | None = None,
        unknown_index: str | int = "random",
        stochastic_eval: bool = False,
    ) -> None:
        super().__init__()
        self.embedding_dim = embedding_dim
        self.n_embed = n_embed
        self.straight_through = straight_through
        self.temperature = temp_init
        self.kl_weight = kl_weight
        self.use_vqinterface = use_vqinterface
        self.stochastic_eval = stochastic_eval
        self.proj = nn.Conv2d(num_hiddens, n_embed, 1)
        self.embed = nn.Embedding(n_embed, embedding_dim)
        self._init_remap(n_embed, remap, unknown_index)

    @property
    def vocab_size(self) -> int:
        """Number of code ids (`re_embed`)."""
        return self.re_embed

    @property
    def embed_dim(self) -> int:
        return self.embedding_dim

    def forward(
        self, z: torch.Tensor, temp: float | None = None, return_logits: bool = False
    ) -> QuantizeOutput | tuple:
        """Quantize z (B, C, H, W) -> z_q (B, D, H, W), KL loss, indices (B, H, W)."""
        hard = self.straight_through if self.training else True
        tau = self.temperature if temp is None else temp
        logits = self.proj(z)  # (B, K, H, W)
        if self.remap is not None:
            full_zeros = torch.zeros_like(logits)
            logits = logits[:, self.used, ...]

        if self.training or self.stochastic_eval:
            soft_one_hot = F.gumbel_softmax(logits, tau=tau, dim=1, hard=hard)
        else:  # deterministic encoding: the mode of the categorical
            ind = logits.argmax(dim=1, keepdim=True)
            soft_one_hot = torch.zeros_like(logits).scatter_(1, ind, 1.0)
        if self.remap is not None:
            full_zeros[:, self.used, ...] = soft_one_hot
            soft_one_hot = full_zeros
        z_q = torch.einsum("bnhw,nd->bdhw", soft_one_hot, self.embed.weight)

        qy = F.softmax(logits, dim=1)
        k = logits.shape[1]
        diff = self.kl_weight * torch.sum(qy * torch.log(qy * k + 1e-10), dim=1).mean()

        ind = soft_one_hot.argmax(dim=1)  # (B, H, W)
        if self.remap is not None:
            ind = self.remap_to_used(ind)
        if self.use_vqinterface:
            out = QuantizeOutput(z_q, diff, QuantizeInfo(None, None, ind))
            return (*out, logits) if return_logits else out
        return (z_q, diff, ind, logits) if return_logits else (z_q, diff, ind)

    def get_codebook_entry(
        self, indices: torch.Tensor, shape: tuple[int, int, int, int]
    ) -> torch.Tensor:
        """Indices (flat, length b*h*w) -> codes (b, D, h, w)."""
        b, h, w, _ = shape
        if b * h * w != indices.numel():
            raise ValueError(f"shape {shape} does not match {indices.numel()} indices")
        indices = rearrange(indices.reshape(-1), "(b h w) -> b h w", b=b, h=h, w=w)
        if self.remap is not None:
            indices = self.unmap_to_all(indices)
        return rearrange(self.embed(indices), "b h w d -> b d h w").contiguous()
