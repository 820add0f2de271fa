"""Lightning training of the second stage: a `Net2NetTransformer` over frozen first-stage codes.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021),
section 3.2: the transformer is trained by maximum likelihood, the cross-entropy of each image
token given the condition and the tokens before it (`Net2NetTransformer.shared_step`). The
first and cond stages stay frozen; `pkeep` (input-token corruption) and `cond_drop_prob`
(condition dropout for classifier-free guidance) are applied by the model in training mode.

`Net2NetModule` owns the model as `self.model` (state-dict keys `model.*`, so `taming.load(run)`
reads its checkpoints, shared `__is_first_stage__` modules included). The optimizer is the
minGPT recipe (`transformer_param_groups`): `AdamW(betas=(0.9, 0.95))` with weight decay 0.01
on the `nn.Linear` weights of the transformer only; biases, LayerNorm and Embedding weights and
`pos_emb` are not decayed. Only transformer parameters are optimised. No scheduler.

Optimization is manual, like `VQGANModule`, so `taming train`'s conventions hold unchanged:
`accumulate_grad_batches` (losses divided by k, a step every k batches and at the end of an
epoch), optional gradient clipping, and `step_count` = optimizer steps (saved in
`checkpoint["taming"]["step_count"]`, continued on resume).

Logged: `train/loss` (step and epoch), `val/loss`, `test/loss`. Image grids
(`taming.train.callbacks.ImageLogger`) come from `log_images`: inputs, reconstructions and
`N` samples each with half of the tokens given, none given and greedy decoding (cached
sampling); layouts (`objects_bbox`, `objects_center_points`) are drawn with the dataset's
conditional builder when the data module has one.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from taming.cond.net2net import Net2NetTransformer
from taming.train.manual import ManualOptimization

logger = logging.getLogger(__name__)

__all__ = ["Net2NetModule", "transformer_param_groups"]

LAYOUT_KEYS = ("objects_bbox", "objects_center_points")

# the frozen first and cond stages are in eval mode on purpose
warnings.filterwarnings("ignore", message=r"Found \d+ module\(s\) in eval mode at the start")


def transformer_param_groups(gpt: nn.Module, weight_decay: float = 0.01) -> list[dict[str, Any]]:
    """minGPT parameter groups: weight decay on `nn.Linear` weights only.

    Biases, `LayerNorm`/`Embedding` weights and `pos_emb` go to the group without decay.

    Args:
        gpt: the transformer.
        weight_decay: decay of the first group.

    Returns:
        `[{"params", "weight_decay", "names"}, {... 0.0 ...}]`, parameters in module order.

    Raises:
        ValueError: a parameter falls in both groups or in none (an unknown layer type).
    """
    decay: set[str] = set()
    no_decay: set[str] = set()
    for module_name, module in gpt.named_modules():
        for name, _ in module.named_parameters(recurse=False):
            full = f"{module_name}.{name}" if module_name else name
            if name.endswith("bias"):
                no_decay.add(full)
            elif name.endswith("weight") and isinstance(module, nn.Linear):
                decay.add(full)
            elif name.endswith("weight") and isinstance(module, nn.LayerNorm | nn.Embedding):
                no_decay.add(full)
    params = dict(gpt.named_parameters())
    if "pos_emb" in params:
        no_decay.add("pos_emb")
    both = decay & no_decay
    if both:
        raise ValueError(f"parameters in both weight-decay groups: {sorted(both)}")
    missing = params.keys() - (decay | no_decay)
    if missing:
        raise ValueError(f"parameters in no weight-decay group: {sorted(missing)}")
    unknown = (decay | no_decay) - params.keys()
    if unknown:
        raise ValueError(f"grouped names that are not parameters: {sorted(unknown)}")
    groups = []
    for names, wd in ((decay, weight_decay), (no_decay, 0.0)):
        ordered = [n for n in params if n in names]
        groups.append(
            {"params": [params[n] for n in ordered], "weight_decay": wd, "names": ordered}
        )
    return groups


class Net2NetModule(ManualOptimization):
    """Trains the transformer of a `Net2NetTransformer` (stages frozen).

    Args:
        model: the `Net2NetTransformer`.
        learning_rate: AdamW learning rate (the trainer sets it from `base_learning_rate`).
        accumulate_grad_batches: batches per optimizer step.
        gradient_clip_val: clip gradients to this norm/value before each step (None: off, as
            in the original).
        gradient_clip_algorithm: "norm" or "value".
        weight_decay: AdamW weight decay of the `nn.Linear` weights.
        betas: AdamW betas.
        max_nonfinite_skips: 0 (default): stop at the first non-finite loss; N: skip such
            batches and stop after more than N (`taming.train.finite`).
    """

    def __init__(
        self,
        model: Net2NetTransformer,
        learning_rate: float = 4.5e-6,
        accumulate_grad_batches: int = 1,
        gradient_clip_val: float | None = None,
        gradient_clip_algorithm: str = "norm",
        weight_decay: float = 0.01,
        betas: tuple[float, float] = (0.9, 0.95),
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
        self.weight_decay = float(weight_decay)
        self.betas = tuple(betas)

    # every transformer parameter takes part in each backward (stages are frozen)
    ddp_find_unused_parameters = False

    # -- bookkeeping ------------------------------------------------------------------------

    @property
    def n_optimizers(self) -> int:
        """Optimizer steps per step (Lightning's `global_step` per `step_count`)."""
        return 1

    def configure_optimizers(self) -> torch.optim.Optimizer:
        groups = transformer_param_groups(self.model.transformer, self.weight_decay)
        for g in groups:
            del g["names"]
        return torch.optim.AdamW(groups, lr=self.learning_rate, betas=self.betas)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.save_step_count(checkpoint)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.load_step_count(checkpoint)

    # -- training ---------------------------------------------------------------------------

    def on_fit_start(self) -> None:
        self.train()  # the transformer trains; the stages stay in eval mode (model.train)

    def training_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor | None:
        boundary = self.at_boundary(batch_idx)
        loss = self.model.shared_step(batch, batch_idx)
        self.manual_backward(self.scaled(loss))
        if not self.step_optimizers([self.optimizers()], {"train/loss": loss}, boundary):
            return None
        if boundary:
            self.step_count += 1
        bs = _batch_size(batch, self.model.first_stage_key)
        self.log(
            "train/loss",
            loss.detach(),
            prog_bar=True,
            logger=True,
            on_step=True,
            on_epoch=True,
            batch_size=bs,
        )
        return loss.detach()

    def _eval_step(self, batch: Mapping[str, Any], split: str) -> torch.Tensor:
        loss = self.model.shared_step(batch)
        bs = _batch_size(batch, self.model.first_stage_key)
        self.log(f"{split}/loss", loss, prog_bar=True, sync_dist=True, batch_size=bs)
        return loss

    def validation_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "val")

    def test_step(self, batch: Mapping[str, Any], batch_idx: int) -> torch.Tensor:
        return self._eval_step(batch, "test")

    # -- images -----------------------------------------------------------------------------

    def conditional_builder(self) -> tuple[Any, Any]:
        """`(builder, label_for_category_no)` of a layout-conditioned model's data, else Nones.

        Looks in the attached data module's validation, train and test datasets (through
        wrappers) for `conditional_builders[cond_stage_key]`, as the original did.
        """
        key = self.model.cond_stage_key
        trainer = self._trainer
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        datasets = getattr(dm, "datasets", None)
        if key not in LAYOUT_KEYS or not isinstance(datasets, Mapping):
            return None, None
        from taming.train.datamodule import unwrap_datasets

        for split in ("validation", "train", "test"):
            if split not in datasets:
                continue
            for leaf in unwrap_datasets(datasets[split]):
                builders = getattr(leaf, "conditional_builders", None)
                if isinstance(builders, Mapping) and key in builders:
                    label = getattr(leaf, "get_textual_label_for_category_no", None)
                    return builders[key], label
        return None, None

    @torch.no_grad()
    def log_images(
        self, batch: Mapping[str, Any], N: int = 4, split: str | None = None, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """The model's `log_images` on the first `N` examples (see the module docstring)."""
        builder, label = self.conditional_builder()
        if builder is not None:
            kwargs.setdefault("conditional_builder", builder)
            kwargs.setdefault("label_for_category_no", label)
        return self.model.log_images(batch, N=N, **kwargs)


def _batch_size(batch: Mapping[str, Any], key: str) -> int:
    x = batch.get(key) if isinstance(batch, Mapping) else None
    return int(len(x)) if x is not None else 1
