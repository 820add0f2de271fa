"""Lightning training of a VQGAN first stage (manual optimization, two Adam optimizers).

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021),
section 3.2: the autoencoder (`VQModel`, `GumbelVQ`, `EMAVQ`) and a PatchGAN discriminator are
trained in alternation; `VQSegmentationModel` (BCE loss, no discriminator) has one optimizer.

`VQGANModule` owns the model as `self.model` (so the state-dict keys are `model.*` and
`taming.load(run_dir)` reads its checkpoints) and builds its loss (`model.init_loss()`). Per
batch (`taming.train.gan_step`):

1. generator step: one autoencoder forward, the adaptive GAN weight from the losses'
   gradients w.r.t. the reconstruction (no second backward through LPIPS and the
   discriminator), one backward, `opt_ae.step()`;
2. discriminator step on the generator step's reconstruction (detached, i.e. from before the
   generator update; the original re-ran the autoencoder after it), `opt_disc.step()`.

Both optimizers are `Adam(lr, betas=(0.5, 0.9))` with `lr` from the trainer's learning-rate rule.

Step counting: Lightning 2 increments `trainer.global_step` on every `optimizer.step()`, i.e.
twice per batch here. The original (PL 1.0) counted one global step per batch (per
accumulated batch group). `step_count` keeps that meaning: completed generator optimizer steps.
It gates `disc_start`, drives the Gumbel temperature schedule, names image logs, and is saved
in the checkpoint (`checkpoint["taming"]["step_count"]`).

Gradient accumulation (`accumulate_grad_batches`) is done here, since Lightning does not
accumulate under manual optimization: losses are divided by k and the optimizers step every k
batches (and at the end of an epoch), like PL 1.0's automatic accumulation.

Checkpoints leave out the frozen VGG16 trunk of LPIPS (`model.loss.perceptual_loss.net.*`,
58 MB that never change and are read from the weights file); it is put back from the module's
own copy when a checkpoint is restored.

Logged: every loss term (`train/aeloss`, `train/discloss` and the loss dictionaries:
`total_loss, quant_loss, nll_loss, rec_loss, p_loss, d_weight, disc_factor, g_loss,
disc_loss, logits_real, logits_fake`), `temperature` (Gumbel), and per epoch
`{train,val}/codebook_usage`, `{train,val}/perplexity` and `{train,val}/dead_codes`; a warning
when the validation codes collapse (`taming.metrics.codebook.collapse_warning`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from taming.autoencoder.vqmodel import EMAVQ
from taming.metrics.codebook import CodebookCounter, codebook_stats, collapse_warning, dead_codes
from taming.train.gan_step import autoencode, discriminator_step, generator_step, make_adam
from taming.train.manual import ManualOptimization

logger = logging.getLogger(__name__)

__all__ = ["VQGANModule"]

# frozen VGG16 trunk of LPIPS, left out of checkpoints (restored from the weights file)
FROZEN_PREFIX = "model.loss.perceptual_loss.net."


class VQGANModule(ManualOptimization):
    """Trains a first-stage model and its loss.

    Args:
        model: `VQModel`, `GumbelVQ`, `EMAVQ` or `VQSegmentationModel` (with a `lossconfig`).
        learning_rate: Adam learning rate of both optimizers (the trainer sets it from
            `base_learning_rate` by the original rule).
        accumulate_grad_batches: batches per optimizer step.
        gradient_clip_val: clip gradients to this norm/value before each step (None: off, as
            in the original).
        gradient_clip_algorithm: "norm" or "value".
        max_nonfinite_skips: 0 (default): stop at the first non-finite loss; N: skip such
            batches and stop after more than N (`taming.train.finite`).
    """

    def __init__(
        self,
        model: nn.Module,
        learning_rate: float = 4.5e-6,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        max_nonfinite_skips: int = 0,
    ) -> None:
        super().__init__(
            learning_rate,
            accumulate_grad_batches,
            gradient_clip_val,
            gradient_clip_algorithm,
            max_nonfinite_skips,
        )
        self.model = model
        self.model.init_loss()
        self.is_gan = hasattr(self.model.loss, "discriminator")
        self.frozen_prefix = FROZEN_PREFIX  # left out of checkpoints
        n_codes = getattr(self.model.quantize, "re_embed", None) or self.model.n_embed
        self._codes = {split: CodebookCounter(n_codes) for split in ("train", "val", "test")}
        self.codebook: dict[str, dict[str, float]] = {}

    # -- bookkeeping ------------------------------------------------------------------------

    @property
    def n_optimizers(self) -> int:
        """Optimizer steps per generator step (Lightning's `global_step` per `step_count`)."""
        return 2 if self.is_gan else 1

    def autoencoder_parameters(self) -> list[nn.Parameter]:
        """Trainable parameters of the autoencoder (the EMA codebook is not optimised)."""
        skip_quantizer = isinstance(self.model, EMAVQ)
        return [
            p
            for name, p in self.model.named_parameters()
            if p.requires_grad
            and not name.startswith("loss.")
            and not (skip_quantizer and name.startswith("quantize."))
        ]

    def configure_optimizers(self) -> Any:
        opt_ae = make_adam(self.autoencoder_parameters(), self.learning_rate)
        if not self.is_gan:
            return opt_ae
        opt_disc = make_adam(self.model.loss.discriminator.parameters(), self.learning_rate)
        return [opt_ae, opt_disc]

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.save_step_count(checkpoint)
        state = checkpoint.get("state_dict", {})
        for key in [k for k in state if k.startswith(FROZEN_PREFIX)]:
            del state[key]  # the frozen LPIPS trunk: 58 MB that come from the weights file

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("state_dict")
        if state is not None:
            for key in [k for k in state if k.startswith("model.")]:
                if self.model.checkpoint_key_rule(key[len("model.") :]):
                    del state[key]  # e.g. LPIPS keys of a run whose perceptual_weight is 0
            for key, value in self.state_dict().items():
                if key.startswith(FROZEN_PREFIX) and key not in state:
                    state[key] = value
        self.load_step_count(checkpoint, self.n_optimizers)

    # -- training ---------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        # Lightning 2 keeps submodule modes; PL 1.0 put everything in train mode, so the LPIPS
        # dropout and the discriminator's BatchNorm statistics are active during training.
        self.train()

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        x = self.model.get_input(batch)  # (B, C, H, W) in [-1, 1]
        bs = x.shape[0]
        step = self.step_count
        boundary = self.at_boundary(batch_idx)
        if hasattr(self.model, "temperature_scheduling"):
            temperature = self.model.temperature_scheduling(step)
            self.log("temperature", float(temperature), logger=True, batch_size=bs)

        if self.is_gan:
            opt_ae, opt_disc = self.optimizers()
            out = generator_step(self.model, x, step, split="train", grad_scale=self._grad_scale())
            self.manual_backward(self.scaled(out.surrogate))
            if not self.step_optimizers([opt_ae], {"train/aeloss": out.loss, **out.log}, boundary):
                return
            d_loss, d_log = discriminator_step(
                self.model.loss, x, out.reconstructions, step, split="train"
            )
            self.manual_backward(self.scaled(d_loss))
            if not self.step_optimizers([opt_disc], {"train/discloss": d_loss, **d_log}, boundary):
                return
            aeloss, log, indices = out.loss, {**out.log, **d_log}, out.indices
            self.log("train/discloss", d_loss.detach(), prog_bar=True, **_EVERY_STEP, batch_size=bs)
        else:
            xrec, qloss, indices = autoencode(self.model, x)
            loss, log = self.model.loss(qloss, x, xrec, split="train")
            self.manual_backward(self.scaled(loss))
            terms = {"train/aeloss": loss, **log}
            if not self.step_optimizers([self.optimizers()], terms, boundary):
                return
            aeloss = loss.detach()
        self.log("train/aeloss", aeloss, prog_bar=True, **_EVERY_STEP, batch_size=bs)
        self.log_dict(log, **_EVERY_STEP, batch_size=bs)
        self._codes["train"].update(indices)
        if boundary:
            self.step_count += 1

    # -- evaluation -------------------------------------------------------------------------

    def _eval_step(self, batch: Mapping[str, Any], split: str) -> None:
        x = self.model.get_input(batch)
        bs = x.shape[0]
        xrec, qloss, indices = autoencode(self.model, x)
        if self.is_gan:
            loss_fn = self.model.loss
            aeloss, log = loss_fn.generator_loss(
                qloss, x, xrec, self.step_count, last_layer=None, split=split
            )
            _, d_log = loss_fn.discriminator_loss(x, xrec, self.step_count, split=split)
            rec_loss = log.pop(f"{split}/rec_loss")
            self.log(f"{split}/rec_loss", rec_loss, prog_bar=True, sync_dist=True, batch_size=bs)
            self.log(f"{split}/aeloss", aeloss, prog_bar=True, sync_dist=True, batch_size=bs)
            log.update(d_log)
        else:
            _, log = self.model.loss(qloss, x, xrec, split=split)
            total = log.pop(f"{split}/total_loss")
            self.log(f"{split}/total_loss", total, prog_bar=True, sync_dist=True, batch_size=bs)
        self.log_dict(log, sync_dist=True, batch_size=bs)
        self._codes[split].update(indices)

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> None:
        self._eval_step(batch, "test")

    # -- codebook statistics ----------------------------------------------------------------

    def _log_codebook(self, split: str) -> None:
        counts = self._codes[split].histogram(self.device)
        self._codes[split].reset()
        if self.trainer.world_size > 1:
            counts = self.trainer.strategy.reduce(counts, reduce_op="sum")
        usage, perplexity = codebook_stats(counts)
        dead = dead_codes(counts)
        self.codebook[split] = {
            "usage": float(usage),
            "perplexity": float(perplexity),
            "dead_codes": dead,
        }
        self.log(f"{split}/codebook_usage", usage.float(), on_step=False, on_epoch=True)
        self.log(f"{split}/perplexity", perplexity.float(), on_step=False, on_epoch=True)
        self.log(f"{split}/dead_codes", float(dead), on_step=False, on_epoch=True)
        if split == "val" and not self.trainer.sanity_checking:
            warning = collapse_warning(counts, where=f"epoch {self.current_epoch} val")
            if warning:
                logger.warning(warning)

    def on_train_epoch_end(self) -> None:
        self._log_codebook("train")

    def on_validation_epoch_end(self) -> None:
        self._log_codebook("val")

    def on_test_epoch_end(self) -> None:
        self._log_codebook("test")

    # -- images -----------------------------------------------------------------------------

    @torch.no_grad()
    def log_images(self, batch: Mapping[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        """`inputs` and `reconstructions` of a batch (the model's `log_images`)."""
        return self.model.log_images(batch, **kwargs)


_EVERY_STEP = {"logger": True, "on_step": True, "on_epoch": True}
