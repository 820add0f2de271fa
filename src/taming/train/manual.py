"""Manual optimization shared by both training modules: accumulate, guard, clip, step, count.

`VQGANModule` (two optimizers, alternating GAN updates) and `Net2NetModule` (one AdamW)
optimise by hand (`automatic_optimization = False`) so that `taming train`'s conventions hold
for both:

- `accumulate_grad_batches = k`: the losses are divided by k and the optimizers step every k
  batches and at the end of an epoch (PL 1.0's automatic accumulation);
- the finite-loss guard (`taming.train.finite.FiniteGuard`) sees every loss term before any
  optimizer steps, and the gradient norm before each step;
- optional gradient clipping (`gradient_clip_val`, `gradient_clip_algorithm`);
- `step_count` = completed optimizer steps of the generator / transformer (the original's
  `global_step`), saved in `checkpoint["taming"]["step_count"]`;
- the learning rate of the run (from `base_learning_rate` and the overrides) is (re)applied to
  the optimizers when training starts, so a resumed run uses it, with a log line when it
  replaces the checkpoint's.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import lightning.pytorch as pl

from taming.train.finite import FiniteGuard, grad_norm

logger = logging.getLogger(__name__)

__all__ = ["ManualOptimization"]


class ManualOptimization(pl.LightningModule):
    """Base of the training modules: the optimizer step sequence, written once."""

    def __init__(
        self,
        learning_rate: float,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        max_nonfinite_skips: int = 0,
    ) -> None:
        super().__init__()
        if accumulate_grad_batches < 1:
            raise ValueError(f"accumulate_grad_batches must be >= 1, got {accumulate_grad_batches}")
        self.automatic_optimization = False
        self.learning_rate = float(learning_rate)
        self.accumulate_grad_batches = int(accumulate_grad_batches)
        self.gradient_clip_val = gradient_clip_val
        self.gradient_clip_algorithm = gradient_clip_algorithm
        self.guard = FiniteGuard(max_nonfinite_skips)
        self.step_count = 0

    @property
    def monitor(self) -> str | None:
        """The model's checkpoint metric (`val/rec_loss`, `val/loss`, ...), if configured."""
        return getattr(self.model, "monitor", None)

    def at_boundary(self, batch_idx: int) -> bool:
        """True on the batch that completes an accumulation group (or ends the epoch)."""
        k = self.accumulate_grad_batches
        return (batch_idx + 1) % k == 0 or bool(self.trainer.is_last_batch)

    def scaled(self, loss: Any) -> Any:
        """The loss to backpropagate under accumulation (divided by k)."""
        k = self.accumulate_grad_batches
        return loss / k if k > 1 else loss

    def _grad_scale(self) -> float:
        """The fp16 GradScaler's current scale (1 without one)."""
        scaler = getattr(getattr(self.trainer, "precision_plugin", None), "scaler", None)
        if scaler is None or not scaler.is_enabled():
            return 1.0
        return float(scaler.get_scale())

    def step_optimizers(
        self, optimizers: Sequence[Any], terms: Mapping[str, Any], boundary: bool
    ) -> bool:
        """After a backward pass: guard, then (at a boundary) clip, step and zero `optimizers`.

        The gradient norm is checked only without an fp16 GradScaler (which skips steps with
        non-finite gradients itself).

        Returns:
            True if the batch counts; False if it was skipped (its gradients are dropped).
        """
        ok = self.guard.check(self.step_count + 1, terms)
        if ok and boundary and self._grad_scale() == 1.0:
            norms = {}
            for i, opt in enumerate(optimizers):
                norm = grad_norm(p for g in opt.param_groups for p in g["params"])
                if norm is not None:
                    norms[f"grad_norm(optimizer {i})"] = norm
            ok = self.guard.check(self.step_count + 1, norms)
        if not ok:
            for opt in optimizers:
                opt.zero_grad(set_to_none=True)
            return False
        if boundary:
            for opt in optimizers:
                if self.gradient_clip_val:
                    self.clip_gradients(
                        opt,
                        gradient_clip_val=self.gradient_clip_val,
                        gradient_clip_algorithm=self.gradient_clip_algorithm,
                    )
                opt.step()
                opt.zero_grad(set_to_none=True)
        return True

    def save_step_count(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["taming"] = {"step_count": int(self.step_count)}

    def load_step_count(self, checkpoint: dict[str, Any], optimizers_per_step: int = 1) -> None:
        saved = checkpoint.get("taming", {}).get("step_count")
        if saved is None:  # not ours: derive it from Lightning's optimizer-step count
            saved = int(checkpoint.get("global_step", 0)) // optimizers_per_step
        self.step_count = int(saved)

    def on_train_start(self) -> None:
        """Apply the run's learning rate (a resumed run's overrides take effect)."""
        replaced = set()
        for opt in self.trainer.optimizers:
            for group in opt.param_groups:
                if group["lr"] != self.learning_rate:
                    replaced.add(float(group["lr"]))
                    group["lr"] = self.learning_rate
        if replaced and self.trainer.is_global_zero:
            old = ", ".join(f"{lr:.2e}" for lr in sorted(replaced))
            logger.info(
                "learning rate %.2e (this run's config) replaces the checkpoint's %s",
                self.learning_rate,
                old,
            )
