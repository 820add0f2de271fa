"""VQGAN losses: LPIPS, PatchGAN discriminator, the VQGAN loss, segmentation and dummy losses.

Papers: LPIPS (Zhang et al., 2018), PatchGAN (Isola et al., 2017), VQGAN (Esser et al., 2021).
"""

from taming.losses.discriminator import ActNorm, NLayerDiscriminator, weights_init
from taming.losses.dummy import DummyLoss
from taming.losses.lpips import LPIPS
from taming.losses.segmentation import BCELoss, BCELossWithQuant
from taming.losses.vqperceptual import (
    VQLPIPSWithDiscriminator,
    adopt_weight,
    hinge_d_loss,
    vanilla_d_loss,
)
from taming.losses.weights import WeightsChecksumError, WeightsNotFoundError

__all__ = [
    "LPIPS",
    "ActNorm",
    "BCELoss",
    "BCELossWithQuant",
    "DummyLoss",
    "NLayerDiscriminator",
    "VQLPIPSWithDiscriminator",
    "WeightsChecksumError",
    "WeightsNotFoundError",
    "adopt_weight",
    "hinge_d_loss",
    "vanilla_d_loss",
    "weights_init",
]
