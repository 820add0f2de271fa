"""Building a run: the Lightning module for the configured model, and the callbacks.

First-stage models (`VQModel`, `GumbelVQ`, `EMAVQ`, `VQSegmentationModel`) get a `VQGANModule`;
a `Net2NetTransformer` gets a `Net2NetModule` (its stage checkpoints must exist). Callbacks:
`last.ckpt` on a schedule, signals and errors (`taming.train.checkpointing`), `{epoch:06}.ckpt`
(the best 3 by the model's `monitor` when there is validation data), image grids, learning
rate, skipped-file report, the config snapshot; original callback targets (`main.ImageLogger`,
`pytorch_lightning.callbacks.*`) are mapped to ours.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from taming.config import ConfigError, instantiate_from_config, to_container

logger = logging.getLogger(__name__)

__all__ = ["build_callbacks", "build_module"]


def _check_stage_checkpoints(model_cfg: DictConfig) -> None:
    """One-line errors for stage `ckpt_path`s of a transformer config that point nowhere."""
    params = model_cfg.get("params") or {}
    for key in ("first_stage_config", "cond_stage_config"):
        stage = params.get(key)
        if not isinstance(stage, DictConfig | dict):
            continue
        path = (stage.get("params") or {}).get("ckpt_path")
        if path is None:
            if key == "first_stage_config":
                logger.warning(
                    "model.params.first_stage_config.params.ckpt_path is not set: the "
                    "transformer learns the codes of an untrained first stage"
                )
            continue
        if not Path(str(path)).is_file():
            raise ConfigError(
                f"model.params.{key}.params.ckpt_path: checkpoint not found: {path} (train "
                "that stage first, then point ckpt_path at its checkpoints/last.ckpt, e.g. "
                f"model.params.{key}.params.ckpt_path=logs/<run>/checkpoints/last.ckpt)"
            )


def _is_transformer_config(model_cfg: DictConfig) -> bool:
    from taming.compat.targets import LEGACY_TARGETS

    target = str(model_cfg.get("target", ""))
    return LEGACY_TARGETS.get(target, target) == "taming.cond.net2net.Net2NetTransformer"


def build_module(model_cfg: DictConfig, module_kw: dict[str, Any]) -> Any:
    """The Lightning module for the configured model.

    First-stage models (`VQModel`, `GumbelVQ`, `EMAVQ`, `VQSegmentationModel`) get a
    `VQGANModule`; a `Net2NetTransformer` gets a `Net2NetModule` (its stage checkpoints must
    exist).
    """
    from taming.autoencoder.vqmodel import VQModel
    from taming.cond.net2net import Net2NetTransformer

    if _is_transformer_config(model_cfg):
        _check_stage_checkpoints(model_cfg)
    try:
        model = instantiate_from_config(model_cfg, where="model")
        if isinstance(model, VQModel):
            model.init_loss()
    except (ValueError, TypeError, ImportError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"model: {str(e).splitlines()[0]}") from e
    if isinstance(model, VQModel):
        from taming.train.vqgan_module import VQGANModule

        return VQGANModule(model, **module_kw)
    if isinstance(model, Net2NetTransformer):
        from taming.train.net2net_module import Net2NetModule

        return Net2NetModule(model, **module_kw)
    raise ConfigError(
        f"model.target: {model_cfg.get('target')} cannot be trained by `taming train` "
        "(first-stage models: VQModel, GumbelVQ, EMAVQ, VQSegmentationModel; second stage: "
        "Net2NetTransformer)"
    )


_CALLBACK_ALIASES = {
    "main.ImageLogger": "taming.train.callbacks.ImageLogger",
    "main.LearningRateMonitor": "lightning.pytorch.callbacks.LearningRateMonitor",
    "main.SetupCallback": None,  # the run folder is set up by run_training itself
}


def _resolve_callback_target(target: str) -> str | None:
    if target in _CALLBACK_ALIASES:
        return _CALLBACK_ALIASES[target]
    for old in ("pytorch_lightning.callbacks.", "lightning.pytorch.callbacks."):
        if target.startswith(old):
            return "lightning.pytorch.callbacks." + target[len(old) :]
    return target


def build_callbacks(
    lightning_cfg: DictConfig,
    paths: Any,
    module: Any,
    has_validation: bool,
    save_every: int,
    config_snapshot: Any,
) -> list[Any]:
    """Checkpointing, image logging, LR monitor, skipped-file report, config snapshot."""
    from taming.train.callbacks import SkippedFilesReport
    from taming.train.checkpointing import LastCheckpoint

    ckptdir = paths.logdir / "checkpoints"
    callbacks: list[Any] = [
        config_snapshot,
        LastCheckpoint(ckptdir, every_n_steps=save_every),
        SkippedFilesReport(),
    ]
    ckpt_params: dict[str, Any] = {
        "dirpath": str(ckptdir),
        "filename": "{epoch:06}",
        "verbose": True,
        "save_last": False,
    }
    if module.monitor and has_validation:
        # after validation only: the monitored metric exists then
        ckpt_params.update(monitor=module.monitor, save_top_k=3, save_on_train_epoch_end=False)
    user = to_container(lightning_cfg.get("modelcheckpoint")) or {}
    ckpt_params.update(user.get("params") or {})
    if ckpt_params.get("every_n_train_steps"):  # generator steps -> optimizer steps
        ckpt_params["every_n_train_steps"] = int(ckpt_params["every_n_train_steps"]) * (
            module.n_optimizers
        )
    target = user.get("target") or "lightning.pytorch.callbacks.ModelCheckpoint"
    callbacks.append(
        instantiate_from_config(
            {"target": _resolve_callback_target(str(target)), "params": ckpt_params},
            where="lightning.modelcheckpoint",
        )
    )

    defaults: dict[str, Any] = {
        "image_logger": {
            "target": "taming.train.callbacks.ImageLogger",
            "params": {"batch_frequency": 750, "max_images": 4, "clamp": True},
        },
        "learning_rate_logger": {
            "target": "lightning.pytorch.callbacks.LearningRateMonitor",
            "params": {"logging_interval": "step"},
        },
    }
    user_cbs = to_container(lightning_cfg.get("callbacks")) or {}
    merged = OmegaConf.to_container(OmegaConf.merge(defaults, user_cbs), resolve=True)
    for name, cfg in merged.items():
        if not isinstance(cfg, dict) or "target" not in cfg:
            raise ConfigError(f"lightning.callbacks.{name}: expected a mapping with a 'target'")
        target = _resolve_callback_target(str(cfg["target"]))
        if target is None:
            continue
        callbacks.append(
            instantiate_from_config(
                {"target": target, "params": cfg.get("params") or {}},
                where=f"lightning.callbacks.{name}",
            )
        )
    return callbacks
