"""`taming.load`: a model from a config, a run folder or an original release folder.

Accepted layouts (the first match wins):

- a YAML file (`model:` section or a bare `{target, params}`), with an optional `ckpt_path`;
- a checkpoint file (`.ckpt`, `.pt`, `.pth`, `.safetensors`): its config is found beside it or
  in the run folder above it (`run/checkpoints/last.ckpt` -> `run/configs/*-project.yaml`);
- an original run or release folder: `configs/*-project.yaml` (merged in sorted order) or
  `configs/*.yaml`, with `checkpoints/last.ckpt` or `ckpts/last.ckpt`;
- a folder holding `config.yaml` and `model.ckpt` / `model.safetensors` / `last.ckpt`.

Checkpoints are read safely (see `taming.compat.checkpoint`), filtered by rule and loaded
strictly. When a checkpoint is given, `ckpt_path` entries nested in the config (first or cond
stage weights) are not read: the checkpoint holds those weights too.

`load` returns the model; `load_sampling_model` (what `taming sample` uses) is the same loader,
checks that the model is a transformer and also returns the checkpoint's step and run folder.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf
from torch import nn

from taming.autoencoder.inference import prepare_first_stage
from taming.compat.checkpoint import (
    CheckpointError,
    load_state_dict_strict,
    read_checkpoint,
    strip_trainer_prefix,
)
from taming.config import ConfigError, instantiate_from_config, load_config, trusted_config

logger = logging.getLogger(__name__)

__all__ = [
    "ModelFiles",
    "drop_nested_ckpt_paths",
    "find_run_files",
    "load",
    "load_model_state",
    "load_sampling_model",
    "resolve_model_files",
]

_CKPT_CANDIDATES = (
    "checkpoints/last.ckpt",
    "ckpts/last.ckpt",
    "model.safetensors",
    "model.ckpt",
    "last.ckpt",
)
_CONFIG_SUFFIXES = (".yaml", ".yml")


def find_run_files(path: str | Path) -> tuple[list[Path], Path | None]:
    """Config files and checkpoint of a run/release folder (or of a single config file)."""
    path = Path(path)
    if path.is_file():
        return [path], None
    if not path.is_dir():
        raise ConfigError(f"no such config file or run folder: {path}")
    cfg_dir = path / "configs"
    configs = sorted(cfg_dir.glob("*-project.yaml")) if cfg_dir.is_dir() else []
    if not configs and cfg_dir.is_dir():
        configs = sorted(
            p for p in cfg_dir.glob("*.yaml") if not p.name.endswith("-lightning.yaml")
        )
    if not configs:
        configs = [p for p in (path / "config.yaml", path / "model.yaml") if p.is_file()]
    if not configs:
        raise ConfigError(
            f"{path}: no config found (looked for configs/*-project.yaml, configs/*.yaml, "
            "config.yaml, model.yaml)"
        )
    ckpt = next((path / c for c in _CKPT_CANDIDATES if (path / c).is_file()), None)
    return configs, ckpt


def drop_nested_ckpt_paths(node: Any) -> None:
    """Set every `ckpt_path` inside a config node to None (in place)."""
    if isinstance(node, DictConfig):
        for key in list(node.keys()):
            if key == "ckpt_path":
                node[key] = None
            else:
                drop_nested_ckpt_paths(node[key])


def load_model_state(
    model: nn.Module, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Load an original-layout (or our Lightning, `model.`-prefixed) state dict strictly."""
    state_dict = strip_trainer_prefix(state_dict)
    if hasattr(model, "load_checkpoint_state"):
        model.load_checkpoint_state(state_dict, source=source)
    else:
        load_state_dict_strict(model, state_dict, source=source)


@dataclass
class ModelFiles:
    """Where a model comes from: its config files, checkpoint and run folder (if any)."""

    configs: list[Path]
    ckpt: Path | None
    run_dir: Path | None


def resolve_model_files(path: str | Path, ckpt_path: str | Path | None = None) -> ModelFiles:
    """The config files, checkpoint and run folder of a YAML file, run folder or checkpoint.

    A checkpoint file's config is looked for beside it, then in the run folder above
    (`run/checkpoints/last.ckpt` -> `run/`); without one, one line says what is needed.
    """
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"not found: {path} (a run folder, a YAML config or a checkpoint)")
    if path.is_file() and path.suffix not in _CONFIG_SUFFIXES:
        for folder in (path.parent, path.parent.parent):
            try:
                configs, _ = find_run_files(folder)
            except ConfigError:
                continue
            ckpt = Path(ckpt_path) if ckpt_path is not None else path
            return ModelFiles(configs, ckpt, folder)
        raise ConfigError(
            f"{path}: no config beside this checkpoint or in the run folder above it (looked "
            f"in {path.parent} and {path.parent.parent}); put its config.yaml beside it, or "
            "pass the YAML config and ckpt_path=this file"
        )
    configs, found = find_run_files(path)
    ckpt = Path(ckpt_path) if ckpt_path is not None else found
    return ModelFiles(configs, ckpt, path if path.is_dir() else None)


def _build(
    files: ModelFiles,
    *,
    base: Sequence[str | Path] = (),
    overrides: Sequence[str] = (),
    with_loss: bool = False,
    stage_ckpts: bool | None = None,
    unsafe: bool = False,
    trust_config: bool = False,
) -> tuple[nn.Module, dict[str, Any] | None]:
    """Instantiate the configured model and load its checkpoint: `(model, checkpoint dict)`."""
    cfg = load_config([*files.configs, *base], list(overrides))
    model_cfg = cfg.get("model", cfg)
    if "target" not in model_cfg:
        raise ConfigError(f"{files.configs[0]}: no 'model.target' in the config")
    ckpt = files.ckpt
    if stage_ckpts is None:
        stage_ckpts = ckpt is None
    content = None
    if ckpt is not None:
        if not ckpt.is_file():
            raise CheckpointError(f"checkpoint not found: {ckpt}")
        content = read_checkpoint(ckpt, unsafe=unsafe)  # before building: fail fast
    if not stage_ckpts:
        model_cfg = OmegaConf.create(OmegaConf.to_container(model_cfg, resolve=True))
        drop_nested_ckpt_paths(model_cfg.get("params"))
    with trusted_config(trust_config):
        model = instantiate_from_config(model_cfg, where="model")
        if with_loss:
            if not hasattr(model, "init_loss"):
                raise ConfigError(f"{type(model).__name__} has no training loss to build")
            model.init_loss()
    if content is not None:
        load_model_state(model, content["state_dict"], source=str(ckpt))
        step = content.get("global_step")
        logger.info(
            "loaded %s from %s%s",
            type(model).__name__,
            ckpt,
            f" (global step {step})" if step is not None else "",
        )
    return model, content


def load(
    config_path_or_run_dir: str | Path,
    ckpt_path: str | Path | None = None,
    *,
    with_loss: bool = False,
    stage_ckpts: bool | None = None,
    unsafe: bool = False,
    trust_config: bool = False,
    overrides: list[str] | None = None,
    device: str | torch.device = "cpu",
    dtype: str | None = None,
    compile: bool = False,
) -> nn.Module:
    """Build a model from a config, run folder or checkpoint and load its weights; returns it
    in eval mode.

    Args:
        config_path_or_run_dir: YAML file, run folder, original release folder, or a
            checkpoint file (`.ckpt`/`.safetensors`) whose config lies beside it or in the run
            folder above it.
        ckpt_path: checkpoint to load (default: the folder's own checkpoint, if any).
        with_loss: also build the training loss (`model.init_loss()`) and load its `loss.*`
            weights; needs the LPIPS weights when the loss is perceptual.
        stage_ckpts: read the `ckpt_path`s nested in the config (first/cond stage weights).
            Default: only when no checkpoint of the whole model is loaded (it holds them).
        unsafe: allow pickles that may run code (only for files you trust).
        trust_config: import any `target:` the config names. By default only the allow list
            resolves (taming's classes, the original targets, torch.nn/torch.optim classes;
            see `taming.config`), since a config can name any callable (`os.system`).
        overrides: dotlist overrides applied to the config (`model.params.n_embed=512`).
        device: where to put the model (`"cpu"`, `"cuda"`, a `torch.device`).
        dtype: `"bf16"` runs the VQGAN encoders/decoders in bfloat16 (opt-in, inference;
            see `taming.autoencoder.inference`); default fp32.
        compile: `torch.compile` the VQGAN encoders/decoders (opt-in; needs a C++ compiler).
    """
    files = resolve_model_files(config_path_or_run_dir, ckpt_path)
    model, _ = _build(
        files,
        overrides=overrides or [],
        with_loss=with_loss,
        stage_ckpts=stage_ckpts,
        unsafe=unsafe,
        trust_config=trust_config,
    )
    return prepare_first_stage(model.to(device).eval(), dtype, compile)


def load_sampling_model(
    resume: str | Path,
    ckpt: str | Path | None = None,
    *,
    base: Sequence[str] = (),
    overrides: Sequence[str] = (),
    unsafe: bool = False,
    trust_config: bool = False,
    device: str | torch.device = "cpu",
) -> tuple[Any, int, Path | None]:
    """A `Net2NetTransformer` for sampling, loaded as `load` does, plus where it came from.

    Args:
        resume: run/release folder, a checkpoint inside one, or a YAML config.
        ckpt: checkpoint to load (default: the run's).
        base: extra configs merged after the run's (`taming sample -b`).
        overrides: dotlist overrides.
        unsafe: allow pickles that may run code.
        trust_config: import any `target:` the config names (see `load`).
        device: where to put the model.

    Returns:
        `(model in eval mode, step, run folder or None)`. The step is the checkpoint's
        optimizer-step count (`taming.step_count` of our runs, `global_step` of original ones).
    """
    from taming.cond.net2net import Net2NetTransformer

    files = resolve_model_files(resume, ckpt)
    model, content = _build(
        files, base=base, overrides=overrides, unsafe=unsafe, trust_config=trust_config
    )
    if not isinstance(model, Net2NetTransformer):
        raise ConfigError(
            f"{resume}: is a {type(model).__name__}; `taming sample` needs a transformer "
            "(Net2NetTransformer) run"
        )
    step = 0
    if content is not None:
        saved = (content.get("taming") or {}).get("step_count")
        step = int(saved if saved is not None else content.get("global_step", 0) or 0)
    else:
        logger.warning("%s: no checkpoint found; the transformer is untrained", resume)
    return model.to(device).eval(), step, files.run_dir
