"""Generator objectives of the GAN term: the original's `-D(xhat)` and the non-saturating loss.

"Generative Adversarial Nets" (Goodfellow et al., 2014), section 3: instead of minimising
`log(1 - D(G(z)))`, which saturates when the discriminator wins, the generator maximises
`log D(G(z))`; with D giving logits, `-log sigmoid(l) = softplus(-l)`. The original VQGAN uses
`-mean(l)` for both its hinge and vanilla discriminator losses (the hinge generator loss of
Lim & Ye 2017 / Miyato et al. 2018); StyleGAN, MaskGIT and later tokenizers use the
non-saturating form.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

__all__ = ["GENERATOR_LOSSES", "linear_generator_loss", "non_saturating_generator_loss"]


def linear_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """`-mean(D(xhat))`, the original VQGAN generator loss."""
    return -torch.mean(logits_fake)


def non_saturating_generator_loss(logits_fake: torch.Tensor) -> torch.Tensor:
    """`mean(softplus(-D(xhat))) = -mean(log sigmoid(D(xhat)))`."""
    return torch.mean(F.softplus(-logits_fake))


GENERATOR_LOSSES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "original": linear_generator_loss,
    "non_saturating": non_saturating_generator_loss,
}
