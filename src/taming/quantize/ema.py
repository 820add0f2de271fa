"""Vector quantizer whose codebook is an exponential moving average of the assigned encodings.

"Neural Discrete Representation Learning" (van den Oord et al., 2017), appendix A.1, and
"Generating Diverse High-Fidelity Images with VQ-VAE-2" (Razavi et al., 2019). The codebook is
not trained by gradients: each training step updates per-code counts and sums with decay
`decay`, and the code vectors are their Laplace-smoothed ratio. Only the commitment loss
`beta * ||sg[z_q] - z||^2` trains the encoder.

The original `EMAVectorQuantizer` cannot be instantiated (it references undefined names). This
one works and keeps the intended state-dict names: `embedding.weight`, `embedding.cluster_size`,
`embedding.embed_avg`.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput, RemapMixin
from taming.quantize.vq import VectorQuantizer, nearest_code

__all__ = ["EMAVectorQuantizer", "EmbeddingEMA"]


class EmbeddingEMA(nn.Module):
    """Codebook maintained by EMA statistics.

    Args:
        num_tokens: number of codes K.
        codebook_dim: code dimension D.
        decay: EMA decay.
        eps: Laplace smoothing of the cluster sizes.
    """

    def __init__(self, num_tokens: int, codebook_dim: int, decay: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.decay = decay
        self.eps = eps
        weight = torch.randn(num_tokens, codebook_dim)
        self.weight = nn.Parameter(weight, requires_grad=False)
        self.cluster_size = nn.Parameter(torch.zeros(num_tokens), requires_grad=False)
        self.embed_avg = nn.Parameter(weight.clone(), requires_grad=False)
        self.update = True

    def forward(self, embed_id: torch.Tensor) -> torch.Tensor:
        return F.embedding(embed_id, self.weight)

    @torch.no_grad()
    def ema_update(self, onehot: torch.Tensor, z_flat: torch.Tensor) -> None:
        """One EMA step from assignments onehot (N, K) and encodings z_flat (N, D)."""
        counts = onehot.sum(0)  # (K,)
        sums = onehot.t() @ z_flat  # (K, D)
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.all_reduce(counts)
            torch.distributed.all_reduce(sums)
        self.cluster_size.data.mul_(self.decay).add_(counts, alpha=1 - self.decay)
        self.embed_avg.data.mul_(self.decay).add_(sums, alpha=1 - self.decay)
        n = self.cluster_size.sum()
        smoothed = (self.cluster_size + self.eps) / (n + self.weight.shape[0] * self.eps) * n
        self.weight.data.copy_(self.embed_avg / smoothed.unsqueeze(1))


class EMAVectorQuantizer(RemapMixin, nn.Module):
    """Nearest-code quantizer with an EMA-updated codebook.

    Args:
        n_embed: number of codes K.
        embedding_dim: code dimension D.
        beta: commitment weight.
        decay: EMA decay of the codebook statistics.
        eps: Laplace smoothing.
        remap: optional `.npy` of used code ids (see `RemapMixin`).
        unknown_index: handling of codes outside `remap`.
    """

    def __init__(
        self,
        n_embed: int,
        embedding_dim: int,
        beta: float,
        decay: float = 0.99,
        eps: float = 1e-5,
        remap: str | None = None,
        unknown_index: str | int = "random",
    ) -> None:
        super().__init__()
        self.codebook_dim = embedding_dim
        self.num_tokens = n_embed
        self.beta = beta
        self.embedding = EmbeddingEMA(n_embed, embedding_dim, decay, eps)
        self._init_remap(n_embed, remap, unknown_index)

    @property
    def vocab_size(self) -> int:
        """Number of code ids (`re_embed`)."""
        return self.re_embed

    @property
    def embed_dim(self) -> int:
        return self.codebook_dim

    def forward(self, z: torch.Tensor) -> QuantizeOutput:
        """Quantize z (B, C, H, W); updates the codebook in training mode."""
        b = z.shape[0]
        z_bhwc = rearrange(z, "b c h w -> b h w c").contiguous()
        z_flat = z_bhwc.view(-1, self.codebook_dim)  # (N, D)
        indices = nearest_code(z_flat, self.embedding.weight)
        onehot = F.one_hot(indices, self.num_tokens).type(z.dtype)  # (N, K)
        avg_probs = onehot.mean(0)
        perplexity = torch.exp(-torch.sum(avg_probs * torch.log(avg_probs + 1e-10)))
        z_q = self.embedding(indices).view(z_bhwc.shape)

        if self.training and self.embedding.update:
            self.embedding.ema_update(onehot, z_flat.detach())

        loss = self.beta * F.mse_loss(z_q.detach(), z_bhwc)
        z_q = z_bhwc + (z_q - z_bhwc).detach()
        z_q = rearrange(z_q, "b h w c -> b c h w").contiguous()
        if self.remap is not None:
            indices = self.remap_to_used(indices.view(b, -1)).reshape(-1)
        return QuantizeOutput(z_q, loss, QuantizeInfo(perplexity, onehot, indices))

    get_codebook_entry = VectorQuantizer.get_codebook_entry
