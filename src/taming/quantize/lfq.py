"""Lookup-free quantization: each channel is one bit, the code id is the bit pattern.

"Language Model Beats Diffusion: Tokenizer is Key to Visual Generation" (MAGVIT-v2, Yu et al.,
ICLR 2024), section 3.1. The input has `d = log2(K)` channels; channel i becomes
`+s if z_i > 0 else -s` (zero included in -s; s = 1), and the id is the binary number with
channel 0 as the most significant bit,

    id = sum_i [z_i > 0] * 2^(d - 1 - i),

the convention of vector-quantize-pytorch's `LFQ` (no projection), whose ids these are. There
is no codebook to learn; usage is encouraged by the entropy auxiliary loss (Eq. 5)

    L = entropy_weight * (E_z[H(q(. | z))] - gamma * H(E_z[q(. | z)])) + commitment_weight *
        ||z - sg[zhat]||^2,   q(c | z) = softmax_c(-||z - c||^2 / temperature).

Because the codes are a product of per-channel signs, q(. | z) factorises into independent
bits with `q(bit_i = +) = sigmoid(4 s z_i / temperature)`: the per-sample entropy is the sum of
the bits' binary entropies (exact, no K-sized softmax). The batch-average distribution does
not factorise; it is computed exactly over all K codes (`entropy_group_bits=None`), or, to
save memory for large K, as the sum of the entropies of groups of `entropy_group_bits`
consecutive bits (an upper bound of the joint entropy; equal when the groups are
independent). Under DDP the batch average spans all processes.

`spherical=True` gives binary spherical quantization (see `taming.quantize.bsq`): the input is
l2-normalised and the codes are `+-1 / sqrt(d)`; ids are unchanged.

Training uses the straight-through estimator; the eval forward returns the codes exactly.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput
from taming.quantize.entropy import batch_mean, entropy

__all__ = ["LFQ", "binary_entropy"]


def binary_entropy(logits: torch.Tensor) -> torch.Tensor:
    """Entropy (nats) of Bernoulli(sigmoid(logits)), elementwise."""
    p = torch.sigmoid(logits)
    return F.softplus(logits) - p * logits  # = -p log p - (1 - p) log(1 - p)


class LFQ(nn.Module):
    """Lookup-free quantizer with `codebook_size = 2^d` codes over d channels.

    Args:
        codebook_size: K, a power of two >= 2.
        entropy_weight: weight of the entropy auxiliary loss.
        commitment_weight: weight of `||z - sg[zhat]||^2`.
        diversity_gamma: weight of the batch-entropy term.
        entropy_temperature: temperature of the soft assignments (vector-quantize-pytorch's
            `inv_temperature` is its inverse, 100 by default).
        entropy_group_bits: bits per group of the batch entropy (None: exact over all K).
        spherical: binary spherical quantization (BSQ).
    """

    _mask: torch.Tensor

    def __init__(
        self,
        codebook_size: int,
        entropy_weight: float = 0.1,
        commitment_weight: float = 0.25,
        diversity_gamma: float = 1.0,
        entropy_temperature: float = 0.01,
        entropy_group_bits: int | None = None,
        spherical: bool = False,
    ) -> None:
        super().__init__()
        d = int(round(math.log2(codebook_size))) if codebook_size >= 2 else 0
        if codebook_size < 2 or 2**d != codebook_size:
            raise ValueError(f"LFQ codebook_size must be a power of two >= 2, got {codebook_size}")
        if entropy_group_bits is not None and not 1 <= entropy_group_bits <= d:
            raise ValueError(f"entropy_group_bits must be in [1, {d}], got {entropy_group_bits}")
        self.codebook_size = codebook_size
        self.bits = d
        self.entropy_weight = entropy_weight
        self.commitment_weight = commitment_weight
        self.diversity_gamma = diversity_gamma
        self.entropy_temperature = entropy_temperature
        self.entropy_group_bits = entropy_group_bits or d
        self.spherical = spherical
        self.scale = 1.0 / math.sqrt(d) if spherical else 1.0
        self.register_buffer("_mask", 2 ** torch.arange(d - 1, -1, -1), persistent=False)

    @property
    def vocab_size(self) -> int:
        return self.codebook_size

    @property
    def embed_dim(self) -> int:
        """Channels of the input and of the codes, log2(K)."""
        return self.bits

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Ids (...) -> codes (..., d) of +-scale."""
        bits = (indices.long()[..., None] & self._mask) != 0
        return torch.where(bits, self.scale, -self.scale).float()

    def entropy_loss(self, z_flat: torch.Tensor) -> torch.Tensor:
        """`E[H(q(.|z))] - gamma * H(E[q(.|z)])` for the (normalised) inputs z_flat (N, d)."""
        logits = 4.0 * self.scale * z_flat.float() / self.entropy_temperature  # (N, d)
        per_sample = binary_entropy(logits).sum(dim=1).mean()
        logp_pos, logp_neg = F.logsigmoid(logits), F.logsigmoid(-logits)  # (N, d)
        batch = logits.new_zeros(())
        for s in range(0, self.bits, self.entropy_group_bits):
            g = min(self.entropy_group_bits, self.bits - s)
            # sub-codebook of the group's bits, most significant first: (2^g, g) in {0, 1}
            sub = (
                torch.arange(2**g, device=z_flat.device)[:, None]
                >> torch.arange(g - 1, -1, -1, device=z_flat.device)
            ) & 1
            sub = sub.to(logits.dtype)
            logp = logp_pos[:, s : s + g] @ sub.t() + logp_neg[:, s : s + g] @ (1 - sub).t()
            batch = batch + entropy(batch_mean(logp.exp()))  # (N, 2^g) -> (2^g,) -> scalar
        return per_sample - self.diversity_gamma * batch

    def forward(self, z: torch.Tensor) -> QuantizeOutput:
        """Quantize z (B, d, H, W) -> `(zhat (B, d, H, W), aux loss, info)`, ids (B, H, W)."""
        b, c, h, w = z.shape
        if c != self.bits:
            raise ValueError(f"LFQ({self.codebook_size}) expects {self.bits} channels, got {c}")
        z_flat = rearrange(z, "b c h w -> (b h w) c").float()
        positive = z_flat > 0  # signs before any normalisation (which can overflow or be 0/0)
        if self.spherical:
            z_flat = F.normalize(z_flat, dim=1)
        zhat = torch.where(positive, self.scale, -self.scale)  # (N, d)
        ids = (positive.long() * self._mask).sum(dim=1)  # (N,)

        loss = z.new_zeros((), dtype=torch.float32)
        if self.training:
            if self.commitment_weight > 0:
                loss = loss + self.commitment_weight * F.mse_loss(z_flat, zhat)
            if self.entropy_weight > 0:
                loss = loss + self.entropy_weight * self.entropy_loss(z_flat)
        if torch.is_grad_enabled() and z.requires_grad:
            zhat = z_flat + (zhat - z_flat).detach()  # straight-through
        quant = rearrange(zhat.to(z.dtype), "(b h w) c -> b c h w", b=b, h=h, w=w).contiguous()
        counts = torch.bincount(ids, minlength=self.codebook_size).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-torch.special.xlogy(p, p).sum())
        return QuantizeOutput(quant, loss, QuantizeInfo(perplexity, None, ids.view(b, h, w)))

    def get_codebook_entry(
        self, indices: torch.Tensor, shape: tuple[int, int, int, int] | None = None
    ) -> torch.Tensor:
        """Ids -> codes (N, d); with `shape=(B, H, W, d)` as (B, d, H, W)."""
        codes = self.indices_to_codes(indices.reshape(-1))
        if shape is None:
            return codes
        if codes.shape[0] != shape[0] * shape[1] * shape[2] or shape[3] != self.bits:
            raise ValueError(f"shape {tuple(shape)} does not fit {codes.shape[0]} LFQ ids")
        return codes.view(shape).permute(0, 3, 1, 2).contiguous()
