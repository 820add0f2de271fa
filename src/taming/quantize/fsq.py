"""Finite scalar quantization: each channel rounded to a few levels, no learned codebook.

"Finite Scalar Quantization: VQ-VAE Made Simple" (Mentzer, Minnen, Agustsson, Tschannen,
ICLR 2024). With `levels = [L_1, ..., L_d]` (the input has d channels), channel i is bounded
and rounded to one of L_i integers, and the code is the tuple of those integers: the implicit
codebook is the grid of `prod(L_i)` points, all of which are reachable, so there is nothing to
collapse and no codebook loss.

    bound(z)_i = tanh(z_i + shift_i) * half_l_i - offset_i,
        half_l_i = (L_i - 1) (1 + eps) / 2,  offset_i = 0.5 if L_i is even else 0,
        shift_i = atanh(offset_i / half_l_i)                     (so that bound(0) = 0)
    zhat_i = round(bound(z)_i) / (L_i // 2)                      (straight-through round)
    id = sum_i (round(bound(z)_i) + L_i // 2) * prod_{j < i} L_j  (mixed radix, channel 0 the
                                                                   least significant digit)

This is the paper's Appendix A.1 code as vector-quantize-pytorch's `FSQ` runs it, whose ids
this quantizer reproduces: the listing printed in the paper writes `(1 - eps)` and `tan`,
where `atanh` (the inverse of the tanh it shifts, so that 0 stays 0) is meant. Both give the
same grid of levels and the same ids except for inputs whose bounded value lies within
`(L - 1) * eps` of a rounding boundary (the eps sign moves the boundaries that much).

The bound is computed in float32 (as the peer library does), whatever the input dtype.

Optional entropy penalty (`entropy_weight > 0`; not in the FSQ paper, whose quantizer has no
auxiliary loss, and off by default): every grid point is reachable, but nothing keeps the
encoder from using the channels jointly, and on small data it does (after 700 demo steps the
bounded channels correlate by up to 0.75 and the tokenizer uses 82% of [7, 5, 5, 5, 5] where
independent channels with the same marginals would use 99%). The penalty is MAGVIT-v2's
entropy loss (as in `LFQ`, Yu et al. 2024, Eq. 5) on soft assignments to the grid,

    q(c | z) = prod_i q_i(c_i | z_i),  q_i(l | z_i) = softmax_l(-(bound(z)_i - l)^2 / T),
    L = entropy_weight * (E_z[H(q(. | z))] - gamma * H(E_z[q(. | z)])),

where the per-sample entropy is the sum of the channels' entropies (q factorises) and the
batch entropy is exact over the joint grid of all `prod(levels)` codes: its batch mean is one
(K_high, N) @ (N, K_low) product of the joints of the two halves of the channels, so nothing of
size N x K is formed. With `entropy_group_channels` it is the sum over groups of consecutive
channels instead (an upper bound that does not see correlations between the groups).
The batch average spans all DDP processes.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from einops import rearrange
from torch import nn

from taming.quantize.base import QuantizeInfo, QuantizeOutput
from taming.quantize.entropy import batch_mean, batch_mean_outer, entropy

__all__ = ["FSQ"]


class FSQ(nn.Module):
    """Finite scalar quantizer over `len(levels)` channels with `prod(levels)` codes.

    Args:
        levels: number of levels per channel (each >= 3; for two levels use `LFQ`). The paper's
            choices: [8, 6, 5] (240 codes), [8, 5, 5, 5] (1000), [7, 5, 5, 5, 5] (4375),
            [8, 8, 8, 6, 5] (15360), [8, 8, 8, 5, 5, 5] (64000).
        eps: margin of the bound (1e-3 in the paper).
        entropy_weight: weight of the optional entropy penalty (0: the paper's FSQ).
        diversity_gamma: weight of its batch-entropy term.
        entropy_temperature: T of the soft assignments, in units of the level spacing.
        entropy_group_channels: channels per group of the batch entropy (None: the whole grid).
    """

    _levels: torch.Tensor
    _basis: torch.Tensor

    def __init__(
        self,
        levels: Sequence[int],
        eps: float = 1e-3,
        entropy_weight: float = 0.0,
        diversity_gamma: float = 1.0,
        entropy_temperature: float = 0.5,
        entropy_group_channels: int | None = None,
    ) -> None:
        super().__init__()
        levels = [int(v) for v in levels]
        if not levels or any(v < 3 for v in levels):
            raise ValueError(f"FSQ levels must be a non-empty list of ints >= 3, got {levels}")
        d = len(levels)
        if entropy_group_channels is not None and not 1 <= entropy_group_channels <= d:
            raise ValueError(
                f"entropy_group_channels must be in [1, {d}], got {entropy_group_channels}"
            )
        if entropy_temperature <= 0:
            raise ValueError(f"entropy_temperature must be > 0, got {entropy_temperature}")
        self.levels = levels
        self.eps = eps
        self.entropy_weight = entropy_weight
        self.diversity_gamma = diversity_gamma
        self.entropy_temperature = entropy_temperature
        self.entropy_group_channels = entropy_group_channels or d
        self.register_buffer("_levels", torch.tensor(levels, dtype=torch.int64), persistent=False)
        basis = [math.prod(levels[:i]) for i in range(len(levels))]
        self.register_buffer("_basis", torch.tensor(basis, dtype=torch.int64), persistent=False)

    @property
    def vocab_size(self) -> int:
        """Number of codes, `prod(levels)`."""
        return math.prod(self.levels)

    @property
    def embed_dim(self) -> int:
        """Channels of the input and of the codes, `len(levels)`."""
        return len(self.levels)

    def _half_width(self) -> torch.Tensor:
        return (self._levels // 2).float()

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """The bounded, not yet rounded channels (..., d), float32."""
        lv = self._levels.float()
        half_l = (lv - 1) * (1 + self.eps) / 2
        offset = torch.where(self._levels % 2 == 0, 0.5, 0.0).to(half_l)
        shift = torch.atanh(offset / half_l)
        return torch.tanh(z.float() + shift) * half_l - offset

    def codes_to_indices(self, zhat: torch.Tensor) -> torch.Tensor:
        """Normalised codes (..., d) -> ids (...)."""
        digits = torch.round(zhat.float() * self._half_width()).long() + self._levels // 2
        return (digits * self._basis).sum(dim=-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """Ids (...) -> normalised codes (..., d) in [-1, 1]."""
        digits = (indices.long()[..., None] // self._basis) % self._levels  # (..., d)
        hw = self._levels // 2
        return (digits - hw).float() / hw.float()

    def entropy_loss(self, bounded: torch.Tensor) -> torch.Tensor:
        """`E[H(q(.|z))] - gamma * H(E[q(.|z)])` for the bounded channels (N, d)."""
        per_sample = bounded.new_zeros(())
        soft = []  # q_i(. | z_i) of each channel, (N, L_i)
        for i, n_levels in enumerate(self.levels):
            grid = torch.arange(n_levels, device=bounded.device) - n_levels // 2  # (L,)
            logp = torch.log_softmax(
                -(bounded[:, i : i + 1] - grid).square() / self.entropy_temperature, 1
            )
            per_sample = per_sample - (logp.exp() * logp).sum(dim=1).mean()
            soft.append(logp.exp())
        batch = bounded.new_zeros(())
        for s in range(0, len(soft), self.entropy_group_channels):
            group = soft[s : s + self.entropy_group_channels]
            half = (len(group) + 1) // 2  # the group's joint mean as (high half)^T @ (low half)
            low, high = _joint(group[:half]), _joint(group[half:])
            mean = batch_mean_outer(low, high) if high is not None else batch_mean(low)
            batch = batch + entropy(mean)
        return per_sample - self.diversity_gamma * batch

    def forward(self, z: torch.Tensor) -> QuantizeOutput:
        """Quantize z (B, d, H, W) -> `(zhat (B, d, H, W), loss, info)`, ids (B, H, W).

        The loss is 0 unless `entropy_weight > 0` in training mode."""
        b, c, h, w = z.shape
        if c != self.embed_dim:
            raise ValueError(f"FSQ{self.levels} expects {self.embed_dim} channels, got {c}")
        zc = rearrange(z, "b c h w -> b h w c")
        bounded = self.bound(zc)
        rounded = torch.round(bounded)
        digits = rounded.long() + self._levels // 2  # (B, H, W, d) in [0, L_i)
        ids = (digits * self._basis).sum(dim=-1)  # (B, H, W)
        zhat = rounded / self._half_width()
        if torch.is_grad_enabled() and z.requires_grad:  # straight-through round
            zhat = (bounded + (rounded - bounded).detach()) / self._half_width()
        zhat = rearrange(zhat.to(z.dtype), "b h w c -> b c h w").contiguous()
        loss = z.new_zeros((), dtype=torch.float32)
        if self.training and self.entropy_weight > 0:
            loss = self.entropy_weight * self.entropy_loss(bounded.reshape(-1, c))
        counts = torch.bincount(ids.reshape(-1), minlength=self.vocab_size).float()
        p = counts / counts.sum()
        perplexity = torch.exp(-torch.special.xlogy(p, p).sum())
        return QuantizeOutput(zhat, loss, QuantizeInfo(perplexity, None, ids))

    def get_codebook_entry(
        self, indices: torch.Tensor, shape: tuple[int, int, int, int] | None = None
    ) -> torch.Tensor:
        """Ids -> codes (N, d); with `shape=(B, H, W, d)` as (B, d, H, W)."""
        codes = self.indices_to_codes(indices.reshape(-1))  # (N, d)
        if shape is None:
            return codes
        if codes.shape[0] != shape[0] * shape[1] * shape[2] or shape[3] != self.embed_dim:
            raise ValueError(f"shape {tuple(shape)} does not fit {codes.shape[0]} FSQ ids")
        return codes.view(shape).permute(0, 3, 1, 2).contiguous()


def _joint(soft: list[torch.Tensor]) -> torch.Tensor | None:
    """Per-row joint of independent channels, channel 0 the least significant digit:
    [(N, L_0), (N, L_1), ...] -> (N, L_0 * L_1 * ...); None for no channels."""
    if not soft:
        return None
    p = soft[0]
    for q in soft[1:]:
        p = (q[:, :, None] * p[:, None, :]).flatten(1)  # (N, L, K) -> (N, L * K)
    return p
