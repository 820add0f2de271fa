"""A codebook kept as an exponential moving average of the encodings assigned to each code.

"Neural Discrete Representation Learning" (van den Oord et al., 2017, appendix A.1) and
"Generating Diverse High-Fidelity Images with VQ-VAE-2" (Razavi et al., 2019): per training
step, with n_k codes assigned to code k and s_k the sum of those encodings,

    N_k <- decay * N_k + (1 - decay) * n_k,    m_k <- decay * m_k + (1 - decay) * s_k,
    e_k  = m_k / N~_k,   N~_k = (N_k + eps) / (sum_j N_j + K eps) * sum_j N_j  (Laplace).

The codebook is not trained by gradients; only the commitment loss trains the encoder. All
three tensors are buffers (`weight`, `cluster_size`, `embed_sum`), so optimisers never see
them. The caller passes counts and sums already reduced over all processes (see
`taming.quantize.distributed`), which keeps the codebook identical under DDP.

`N_k` starts at 1 and `m_k` at the initial code, so a code keeps its vector until data reach
it (starting from 0 as in the original `EMAVectorQuantizer` sends every unused code to a huge
vector on the first update).
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["EMACodebook"]


class EMACodebook(nn.Module):
    """K x D codebook updated by EMA statistics.

    Args:
        num_codes: K.
        dim: D.
        decay: EMA decay.
        eps: Laplace smoothing of the cluster sizes.
        init: initial codes (K, D).
    """

    weight: torch.Tensor
    cluster_size: torch.Tensor
    embed_sum: torch.Tensor

    def __init__(
        self, num_codes: int, dim: int, decay: float, eps: float, init: torch.Tensor
    ) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"ema_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.eps = eps
        self.register_buffer("weight", init.detach().clone().reshape(num_codes, dim))
        self.register_buffer("cluster_size", torch.ones(num_codes))
        self.register_buffer("embed_sum", self.weight.clone())

    @torch.no_grad()
    def update(self, counts: torch.Tensor, sums: torch.Tensor) -> None:
        """One EMA step from global counts (K,) and sums of the assigned encodings (K, D)."""
        self.cluster_size.mul_(self.decay).add_(counts.to(self.cluster_size), alpha=1 - self.decay)
        self.embed_sum.mul_(self.decay).add_(sums.to(self.embed_sum), alpha=1 - self.decay)
        n = self.cluster_size.sum()
        k = self.cluster_size.shape[0]
        smoothed = (self.cluster_size + self.eps) / (n + k * self.eps) * n  # (K,)
        self.weight.copy_(self.embed_sum / smoothed[:, None])

    @torch.no_grad()
    def set_codes(self, ids: torch.Tensor, vectors: torch.Tensor) -> None:
        """Replace codes `ids` by `vectors` (k-means init, dead-code restart); statistics reset."""
        self.weight[ids] = vectors.to(self.weight)
        self.cluster_size[ids] = 1.0
        self.embed_sum[ids] = vectors.to(self.embed_sum)
