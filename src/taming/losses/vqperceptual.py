"""VQGAN training loss: L1 + LPIPS reconstruction, codebook loss and a PatchGAN adversary.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, 2021), Eq. 4-6:
the generator minimises `L_rec + L_codebook + lambda * L_GAN`, with the adaptive weight
`lambda = ||grad_w L_rec|| / (||grad_w L_GAN|| + 1e-4)` taken at the decoder's last layer `w`;
the discriminator (PatchGAN, `taming.losses.discriminator`) minimises a hinge or vanilla loss.
Both GAN terms are off (`adopt_weight` -> 0) before `disc_start` global steps.

Instead of the original's `optimizer_idx` switch there are two methods, `generator_loss` and
`discriminator_loss`; `forward(..., optimizer_idx, ...)` still dispatches to them for old code.
The pieces (`reconstruction_loss`, `adversarial_loss`, `calculate_adaptive_weight`) are public
so a trainer can compose them (e.g. pass a precomputed `d_weight`).

Modern-tokenizer options (all off by default, so the original configs are unchanged):
`gen_loss="non_saturating"` (`taming.losses.adversarial`), `lecam_weight` > 0 (LeCAM,
`taming.losses.lecam`; the submodule `lecam` exists only then) and `disc_warmup_steps`: the
discriminator trains from `disc_start`, the GAN terms reach the generator only from
`disc_start + disc_warmup_steps` (discriminator warm-up, as in MaskBit and Open-MAGVIT2), so
the generator meets a discriminator that already tells real from fake.
`discriminator_iter_start` is that later step (what gates the generator side, also in
`taming.train.gan_step`), `disc_train_start` the discriminator's.

Train/eval note: in training mode the LPIPS heads' dropout is active and the BatchNorm
discriminator uses batch statistics in both passes, as in the original training.

`perceptual_weight == 0`: no LPIPS network is built (`perceptual_loss` is None; 14.7M
parameters fewer in a model summary, and no weights file is needed). Checkpoints that carry
`perceptual_loss.*` keys (the original's, or runs from before this choice) still load strictly:
`checkpoint_key_rule` drops exactly those keys, as a pure key filter.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from taming.losses.adversarial import GENERATOR_LOSSES
from taming.losses.discriminator import NLayerDiscriminator, weights_init
from taming.losses.lecam import LeCAM
from taming.losses.lpips import LPIPS

logger = logging.getLogger(__name__)

__all__ = [
    "VQLPIPSWithDiscriminator",
    "adopt_weight",
    "generator_log",
    "hinge_d_loss",
    "vanilla_d_loss",
]


def generator_log(
    split: str,
    total: torch.Tensor,
    codebook_loss: torch.Tensor,
    nll_loss: torch.Tensor,
    rec_loss: torch.Tensor,
    p_loss: torch.Tensor,
    d_weight: torch.Tensor,
    disc_factor: float,
    g_loss: torch.Tensor,
) -> dict[str, torch.Tensor]:
    """The generator's detached log dict (the original's keys), built in one place."""
    return {
        f"{split}/total_loss": total.detach().clone(),
        f"{split}/quant_loss": codebook_loss.detach().mean(),
        f"{split}/nll_loss": nll_loss.detach(),
        f"{split}/rec_loss": rec_loss.detach().mean(),
        f"{split}/p_loss": p_loss.detach().mean(),
        f"{split}/d_weight": d_weight.detach(),
        f"{split}/disc_factor": torch.tensor(float(disc_factor), device=nll_loss.device),
        f"{split}/g_loss": g_loss.detach(),
    }


def adopt_weight(weight: float, global_step: int, threshold: int = 0, value: float = 0.0) -> float:
    """`value` (0) while `global_step < threshold`, else `weight`."""
    if global_step < threshold:
        weight = value
    return weight


def hinge_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (mean(relu(1 - real)) + mean(relu(1 + fake)))."""
    loss_real = torch.mean(F.relu(1.0 - logits_real))
    loss_fake = torch.mean(F.relu(1.0 + logits_fake))
    return 0.5 * (loss_real + loss_fake)


def vanilla_d_loss(logits_real: torch.Tensor, logits_fake: torch.Tensor) -> torch.Tensor:
    """0.5 * (mean(softplus(-real)) + mean(softplus(fake))) (non-saturating BCE)."""
    return 0.5 * (torch.mean(F.softplus(-logits_real)) + torch.mean(F.softplus(logits_fake)))


_D_LOSSES: dict[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = {
    "hinge": hinge_d_loss,
    "vanilla": vanilla_d_loss,
}


class VQLPIPSWithDiscriminator(nn.Module):
    """The VQGAN first-stage loss (original parameter names and defaults).

    Args:
        disc_start: global step from which the GAN terms are switched on (the discriminator's
            training; the generator's too unless `disc_warmup_steps` > 0).
        codebook_weight: weight of the quantizer loss.
        pixelloss_weight: stored as `pixel_weight` but unused, as in the original.
        disc_num_layers: PatchGAN depth (`n_layers`).
        disc_in_channels: discriminator input channels (image + condition channels).
        disc_factor: GAN factor once `global_step >= disc_start`.
        disc_weight: multiplier of the adaptive weight.
        perceptual_weight: weight of LPIPS in the reconstruction loss; 0 disables it and no
            pretrained weights are needed.
        use_actnorm: ActNorm instead of BatchNorm in the discriminator.
        disc_conditional: the discriminator sees `cat(image, cond)`.
        disc_ndf: discriminator base width.
        disc_loss: `"hinge"` or `"vanilla"`.
        lpips_vgg_weights: explicit VGG16 weights file (else searched, see
            `taming.losses.weights`).
        lpips_lin_weights: explicit LPIPS linear-head file (else searched).
        lpips_pretrained: load the LPIPS weights from disk; False builds random ones (use it
            when a full checkpoint with `perceptual_loss.*` will be loaded afterwards).
        gen_loss: generator GAN objective, `"original"` (`-mean(D(xhat))`) or
            `"non_saturating"` (`mean(softplus(-D(xhat)))`).
        lecam_weight: weight of the LeCAM penalty in the discriminator loss (0: off).
        lecam_decay: EMA decay of the LeCAM anchors.
        disc_warmup_steps: steps the discriminator trains before its loss reaches the generator.

    Raises:
        ValueError: unknown `disc_loss` or `gen_loss`, negative `disc_warmup_steps`.
        WeightsNotFoundError: LPIPS weights are needed but not on disk.
    """

    def __init__(
        self,
        disc_start: int,
        codebook_weight: float = 1.0,
        pixelloss_weight: float = 1.0,
        disc_num_layers: int = 3,
        disc_in_channels: int = 3,
        disc_factor: float = 1.0,
        disc_weight: float = 1.0,
        perceptual_weight: float = 1.0,
        use_actnorm: bool = False,
        disc_conditional: bool = False,
        disc_ndf: int = 64,
        disc_loss: str = "hinge",
        lpips_vgg_weights: str | os.PathLike | None = None,
        lpips_lin_weights: str | os.PathLike | None = None,
        lpips_pretrained: bool = True,
        gen_loss: str = "original",
        lecam_weight: float = 0.0,
        lecam_decay: float = 0.999,
        disc_warmup_steps: int = 0,
    ) -> None:
        super().__init__()
        if disc_loss not in _D_LOSSES:
            raise ValueError(f"disc_loss must be one of {sorted(_D_LOSSES)}, got {disc_loss!r}")
        if gen_loss not in GENERATOR_LOSSES:
            raise ValueError(
                f"gen_loss must be one of {sorted(GENERATOR_LOSSES)}, got {gen_loss!r}"
            )
        if disc_warmup_steps < 0:
            raise ValueError(f"disc_warmup_steps must be >= 0, got {disc_warmup_steps}")
        self.codebook_weight = codebook_weight
        self.pixel_weight = pixelloss_weight
        self.perceptual_weight = perceptual_weight
        self.perceptual_loss: LPIPS | None = None
        if perceptual_weight > 0:
            self.perceptual_loss = LPIPS(
                vgg_weights=lpips_vgg_weights,
                lin_weights=lpips_lin_weights,
                pretrained=lpips_pretrained,
            ).eval()
        self.discriminator = NLayerDiscriminator(
            input_nc=disc_in_channels,
            n_layers=disc_num_layers,
            use_actnorm=use_actnorm,
            ndf=disc_ndf,
        ).apply(weights_init)
        self.disc_train_start = disc_start
        self.discriminator_iter_start = disc_start + disc_warmup_steps  # generator side
        self.gen_loss_name = gen_loss
        self.gen_loss = GENERATOR_LOSSES[gen_loss]
        self.lecam_weight = lecam_weight
        if lecam_weight > 0:
            self.lecam = LeCAM(lecam_decay)
        self.disc_loss_name = disc_loss
        self.disc_loss = _D_LOSSES[disc_loss]
        self.disc_factor = disc_factor
        self.discriminator_weight = disc_weight
        self.disc_conditional = disc_conditional
        logger.debug("VQLPIPSWithDiscriminator running with %s loss", disc_loss)

    def checkpoint_key_rule(self, key: str) -> bool:
        """True for state-dict keys (relative to this loss) dropped by rule when loading:
        the LPIPS network's `perceptual_loss.*` when `perceptual_weight == 0` (not built)."""
        return self.perceptual_loss is None and key.startswith("perceptual_loss.")

    # ----------------------------------------------------------------------------- pieces
    def reconstruction_loss(
        self, inputs: torch.Tensor, reconstructions: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """L1 + perceptual reconstruction loss.

        Args:
            inputs: x (B, C, H, W) in [-1, 1].
            reconstructions: x_hat (B, C, H, W).

        Returns:
            `(nll_loss, rec_loss, p_loss)`: the scalar mean of `rec_loss`; the per-element
            `|x - x_hat| + perceptual_weight * LPIPS` (B, C, H, W); LPIPS (B, 1, 1, 1), or a
            zero (1,) tensor when `perceptual_weight == 0`.
        """
        inputs = inputs.contiguous()
        reconstructions = reconstructions.contiguous()
        rec_loss = torch.abs(inputs - reconstructions)  # (B, C, H, W)
        if self.perceptual_loss is not None:
            p_loss = self.perceptual_loss(inputs, reconstructions)  # (B, 1, 1, 1)
            rec_loss = rec_loss + self.perceptual_weight * p_loss
        else:
            p_loss = torch.zeros(1, device=inputs.device, dtype=rec_loss.dtype)
        nll_loss = torch.mean(rec_loss)  # broadcast, then mean: the original's summation
        return nll_loss, rec_loss, p_loss

    def _disc_input(self, x: torch.Tensor, cond: torch.Tensor | None) -> torch.Tensor:
        if cond is None:
            if self.disc_conditional:
                raise ValueError("disc_conditional=True needs a `cond` tensor")
            return x.contiguous()
        if not self.disc_conditional:
            raise ValueError("`cond` given but disc_conditional=False")
        return torch.cat((x.contiguous(), cond), dim=1)

    def adversarial_loss(
        self, reconstructions: torch.Tensor, cond: torch.Tensor | None = None
    ) -> torch.Tensor:
        """Generator GAN loss: `-mean(D(x_hat))` (the original's, for hinge and vanilla), or the
        non-saturating `mean(softplus(-D(x_hat)))` with `gen_loss="non_saturating"`."""
        logits_fake = self.discriminator(self._disc_input(reconstructions, cond))
        return self.gen_loss(logits_fake)

    def calculate_adaptive_weight(
        self, nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor
    ) -> torch.Tensor:
        """`disc_weight * clamp(||dL_rec/dw|| / (||dL_GAN/dw|| + 1e-4), 0, 1e4)`, detached.

        Raises:
            RuntimeError: no graph from the losses to `last_layer` (e.g. under no_grad).
        """
        nll_grads = torch.autograd.grad(nll_loss, last_layer, retain_graph=True)[0]
        g_grads = torch.autograd.grad(g_loss, last_layer, retain_graph=True)[0]
        d_weight = torch.norm(nll_grads) / (torch.norm(g_grads) + 1e-4)
        d_weight = torch.clamp(d_weight, 0.0, 1e4).detach()
        return d_weight * self.discriminator_weight

    # ----------------------------------------------------------------------------- losses
    def generator_loss(
        self,
        codebook_loss: torch.Tensor,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        global_step: int,
        last_layer: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        split: str = "train",
        d_weight: torch.Tensor | float | None = None,
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Autoencoder loss `nll + d_weight * disc_factor * g_loss + codebook_weight * q_loss`.

        Args:
            codebook_loss: quantizer loss (any shape; its mean is used).
            inputs: x (B, C, H, W).
            reconstructions: x_hat (B, C, H, W), with a graph to `last_layer`.
            global_step: batch counter (gates the GAN term at `disc_start`).
            last_layer: decoder's last weight (`decoder.conv_out.weight`) for the adaptive
                weight. Like the original, the weight is computed even before `disc_start`.
                If there is no graph (no_grad) or `last_layer` is None, it is 0 — allowed only
                outside training mode.
            cond: condition concatenated to the discriminator input (disc_conditional).
            split: prefix of the log keys.
            d_weight: precomputed adaptive weight; skips the two `autograd.grad` calls (a
                trainer can pass 0 before `disc_start` to save them).

        Returns:
            `(loss, log)` with detached `{split}/total_loss, quant_loss, nll_loss, rec_loss,
            p_loss, d_weight, disc_factor, g_loss`.
        """
        nll_loss, rec_loss, p_loss = self.reconstruction_loss(inputs, reconstructions)
        g_loss = self.adversarial_loss(reconstructions, cond)
        if d_weight is None:
            d_weight = self._adaptive_weight_or_zero(nll_loss, g_loss, last_layer)
        elif not isinstance(d_weight, torch.Tensor):
            d_weight = torch.tensor(float(d_weight), device=nll_loss.device)
        disc_factor = adopt_weight(
            self.disc_factor, global_step, threshold=self.discriminator_iter_start
        )
        q_loss = codebook_loss.mean()
        loss = nll_loss + d_weight * disc_factor * g_loss + self.codebook_weight * q_loss
        log = generator_log(
            split, loss, codebook_loss, nll_loss, rec_loss, p_loss, d_weight, disc_factor, g_loss
        )
        return loss, log

    def _adaptive_weight_or_zero(
        self, nll_loss: torch.Tensor, g_loss: torch.Tensor, last_layer: torch.Tensor | None
    ) -> torch.Tensor:
        zero = torch.tensor(0.0, device=nll_loss.device)
        if last_layer is None:
            if self.training:
                raise ValueError(
                    "generator_loss in training mode needs `last_layer` (the decoder's last "
                    "weight) for the adaptive GAN weight, or a precomputed `d_weight`"
                )
            return zero
        try:
            return self.calculate_adaptive_weight(nll_loss, g_loss, last_layer)
        except RuntimeError as e:
            if self.training:
                raise RuntimeError(
                    "cannot compute the adaptive GAN weight in training mode (no graph from "
                    f"the losses to `last_layer`): {e}"
                ) from e
            return zero

    def discriminator_loss(
        self,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        global_step: int,
        cond: torch.Tensor | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Discriminator loss `disc_factor * (d_loss(D(sg[x]), D(sg[x_hat])) + w * R_LC)`.

        Real and fake go through the discriminator separately (as in the original), so
        BatchNorm statistics in training mode are per pass. `disc_factor` is on from
        `disc_train_start` (= `disc_start`); the LeCAM term `R_LC` only with `lecam_weight` > 0.

        Returns:
            `(loss, log)` with detached `{split}/disc_loss, logits_real, logits_fake` (and
            `{split}/lecam_loss` with LeCAM).
        """
        logits_real = self.discriminator(self._disc_input(inputs.detach(), cond))
        logits_fake = self.discriminator(self._disc_input(reconstructions.detach(), cond))
        disc_factor = adopt_weight(self.disc_factor, global_step, threshold=self.disc_train_start)
        d_loss = self.disc_loss(logits_real, logits_fake)
        lecam = None
        if self.lecam_weight > 0:
            lecam = self.lecam(logits_real, logits_fake)
            d_loss = d_loss + self.lecam_weight * lecam
        d_loss = disc_factor * d_loss
        log = {
            f"{split}/disc_loss": d_loss.detach().clone(),
            f"{split}/logits_real": logits_real.detach().mean(),
            f"{split}/logits_fake": logits_fake.detach().mean(),
        }
        if lecam is not None:
            log[f"{split}/lecam_loss"] = lecam.detach()
        return d_loss, log

    def forward(
        self,
        codebook_loss: torch.Tensor,
        inputs: torch.Tensor,
        reconstructions: torch.Tensor,
        optimizer_idx: int,
        global_step: int,
        last_layer: torch.Tensor | None = None,
        cond: torch.Tensor | None = None,
        split: str = "train",
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Original interface: `optimizer_idx` 0 -> `generator_loss`, 1 -> `discriminator_loss`."""
        if optimizer_idx == 0:
            return self.generator_loss(
                codebook_loss,
                inputs,
                reconstructions,
                global_step,
                last_layer=last_layer,
                cond=cond,
                split=split,
            )
        if optimizer_idx == 1:
            return self.discriminator_loss(
                inputs, reconstructions, global_step, cond=cond, split=split
            )
        raise ValueError(
            f"optimizer_idx must be 0 (generator) or 1 (discriminator): {optimizer_idx}"
        )
