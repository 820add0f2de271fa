"""The run folder of `taming train`: where a run lives, and which configs and checkpoint it uses.

A new run is `<logdir>/<%Y-%m-%dT%H-%M-%S>_<name><postfix>/` (name: `--name`, else the stem of
the first `--base` config). `--resume RUN` (a run folder or a checkpoint inside it) reuses the
folder, prepends its `configs/*.yaml` to `--base` and resumes from `checkpoints/last.ckpt` (or
the given file). Processes started by Lightning's DDP launcher find rank 0's folder in
`TAMING_RUN_DIR`.

The merged config is checked section by section (`check_sections`): unknown top-level keys and
unknown keys of `lightning`, `lightning.modelcheckpoint` and each `lightning.callbacks` entry
fail with one line naming the key and the closest valid one (`--allow-extra-keys` keeps your
own sections); `lightning.trainer` and `data.params` are checked against the signatures of
`Trainer` and the data module when they are built.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from taming.config import ConfigError, check_keys

__all__ = ["RUN_DIR_ENV", "RunPaths", "check_sections", "resolve_run", "split_config"]

# rank 0 tells the processes that Lightning's DDP launcher starts which run folder to use
RUN_DIR_ENV = "TAMING_RUN_DIR"

TOP_LEVEL_KEYS = ("model", "data", "lightning")
LIGHTNING_KEYS = ("trainer", "modelcheckpoint", "callbacks", "logger", "last_checkpoint")
TARGET_KEYS = ("target", "params")


@dataclass
class RunPaths:
    logdir: Path
    now: str
    ckpt_path: Path | None
    base: list[str]
    resumed: bool


def _timestamp() -> str:
    return datetime.now().strftime("%Y-%m-%dT%H-%M-%S")


def resolve_run(opts: Any) -> RunPaths:
    """The run folder, config list and checkpoint to resume from (original semantics)."""
    now = _timestamp()
    if opts.name and opts.resume:
        raise ConfigError(
            "-n/--name and -r/--resume cannot be given together; to continue from a checkpoint "
            "in a new run folder, use -n with --resume_from_checkpoint"
        )
    if opts.resume:
        target = Path(opts.resume)
        if not target.exists():
            raise FileNotFoundError(f"cannot resume: {target} does not exist")
        if target.is_file():
            ckpt = target
            logdir = target.parent.parent if target.parent.name == "checkpoints" else target.parent
        else:
            logdir = target
            ckpt = logdir / "checkpoints" / "last.ckpt"
            if not ckpt.is_file():
                raise FileNotFoundError(
                    f"cannot resume: {ckpt} not found (the run stopped before its first "
                    "checkpoint; start a new run)"
                )
        cfg_dir = logdir / "configs"
        base = sorted(str(p) for p in cfg_dir.glob("*.yaml")) if cfg_dir.is_dir() else []
        return RunPaths(logdir, now, ckpt, base + list(opts.base), resumed=True)
    ckpt = Path(opts.resume_from_checkpoint) if opts.resume_from_checkpoint else None
    if ckpt is not None and not ckpt.is_file():
        raise FileNotFoundError(f"--resume_from_checkpoint: {ckpt} not found")
    if opts.run_dir:
        return RunPaths(Path(opts.run_dir), now, ckpt, list(opts.base), resumed=False)
    shared = os.environ.get(RUN_DIR_ENV)
    if shared and os.environ.get("LOCAL_RANK", "0") != "0":
        # a process started by Lightning's DDP launcher: use the folder of rank 0
        return RunPaths(Path(shared), now, ckpt, list(opts.base), resumed=False)
    if opts.name:
        name = "_" + opts.name
    elif opts.base:
        name = "_" + Path(opts.base[0]).stem
    else:
        name = ""
    logdir = Path(opts.logdir) / f"{now}{name}{opts.postfix}"
    return RunPaths(logdir, now, ckpt, list(opts.base), resumed=False)


def split_config(config: DictConfig) -> tuple[DictConfig, DictConfig]:
    """`(config without lightning, lightning section)`."""
    config = config.copy()
    lightning = config.pop("lightning", None) or OmegaConf.create()
    return config, lightning


def check_sections(config: DictConfig) -> None:
    """One line naming the first unknown key of the config's fixed sections (see above)."""
    check_keys(config, TOP_LEVEL_KEYS, "")
    lightning = config.get("lightning")
    if lightning is None:
        return
    if not isinstance(lightning, DictConfig):
        raise ConfigError("lightning: expected a mapping")
    check_keys(lightning, LIGHTNING_KEYS, "lightning")
    for key in ("modelcheckpoint", "logger"):
        check_keys(lightning.get(key), TARGET_KEYS, f"lightning.{key}")
    check_keys(lightning.get("last_checkpoint"), ("every_n_steps",), "lightning.last_checkpoint")
    callbacks = lightning.get("callbacks")
    if isinstance(callbacks, DictConfig):
        for name, cfg in callbacks.items():
            check_keys(cfg, TARGET_KEYS, f"lightning.callbacks.{name}")
