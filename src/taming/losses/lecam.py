"""LeCAM regularisation of the discriminator.

"Regularizing Generative Adversarial Networks under Limited Data" (Tseng, Jiang, Liu, Yang,
Yang, CVPR 2021), Eq. 3: with alpha_R and alpha_F exponential moving averages of the
discriminator's mean output on real and on generated images,

    R_LC = E_x[ ||D(x) - alpha_F||^2 ] + E_xhat[ ||D(xhat) - alpha_R||^2 ],

added to the discriminator loss with a small weight (MaskBit and later tokenizers use 0.001 with
decay 0.999). It keeps the real and fake logits from drifting apart, which stabilises GAN
training of tokenizers. The averages are buffers (`ema_real`, `ema_fake`), updated in training
mode only, from the batch means averaged over all DDP processes, before the penalty is taken.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
from torch import nn

__all__ = ["LeCAM"]


def _global_mean(t: torch.Tensor) -> torch.Tensor:
    m = t.detach().float().mean()
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        dist.all_reduce(m)
        m = m / dist.get_world_size()
    return m


class LeCAM(nn.Module):
    """LeCAM penalty with EMA anchors.

    Args:
        decay: EMA decay of the anchors alpha_R, alpha_F (both start at 0).
    """

    ema_real: torch.Tensor
    ema_fake: torch.Tensor

    def __init__(self, decay: float = 0.999) -> None:
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"lecam_decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.register_buffer("ema_real", torch.zeros(()))
        self.register_buffer("ema_fake", torch.zeros(()))

    @torch.no_grad()
    def update(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> None:
        """One EMA step of the anchors from this batch's logits."""
        self.ema_real.mul_(self.decay).add_(_global_mean(logits_real), alpha=1 - self.decay)
        self.ema_fake.mul_(self.decay).add_(_global_mean(logits_fake), alpha=1 - self.decay)

    def forward(self, logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
        """R_LC for this batch (anchors updated first in training mode)."""
        if self.training:
            self.update(logits_real, logits_fake)
        real = torch.mean((logits_real - self.ema_fake) ** 2)
        fake = torch.mean((logits_fake - self.ema_real) ** 2)
        return real + fake
