"""Run a training job from YAML configs: the original `main.py`, on Lightning 2.

`run_training(TrainOptions(...))` is what `taming train` calls:

1. **Run folder** (`taming.train.run_folder`): a new `<logdir>/<timestamp>_<name><postfix>/`,
   or, with `--resume RUN`, the run's own folder, configs and `checkpoints/last.ckpt`:
   optimizer states, Lightning's loops and the generator-step count continue. A checkpoint of
   an original (PyTorch-Lightning 1.x) run is a warm start instead: its weights and step count
   are loaded, the optimizers start afresh (`taming.train.checkpointing`).
2. **Config.** `--base` files merged left to right, then `key.sub=value` overrides; the
   sections are checked for unknown keys (`--allow-extra-keys` to keep your own); the
   `lightning:` section is split off. Trainer options from the command line override
   `lightning.trainer`; PL 1.x options are translated (`taming.train.trainer_options`).
3. **Learning rate.** `accumulate_grad_batches * devices * num_nodes * batch_size *
   base_learning_rate`, logged at the start (the original's rule, plus nodes), and applied to
   the optimizers when training starts, so `-r RUN model.base_learning_rate=...` takes effect.
   Other overrides on resume take effect through the rebuilt model, data and trainer; one that
   changes the architecture is refused (the checkpoint does not fit, one line).
4. **Trainer** (`taming.train.build`): loggers (`metrics.csv`, + TensorBoard when installed),
   checkpoints, image grids, learning rate, skipped-file report, progress bar with totals.
5. **Steps.** `max_steps` and step intervals count generator steps (batches), as in the
   original; Lightning counts optimizer steps (two per batch for a VQGAN), so they are scaled.
6. **Distributed.** `--devices N` (CPU or GPU), `--num_nodes`, `--strategy ddp|ddp_spawn|fsdp`.
7. **Non-finite losses** stop the run at their step (`taming.train.finite`; `--skip-nonfinite N`
   skips up to N such batches instead); no non-finite checkpoint is ever written.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from taming.config import ConfigError, instantiate_from_config, load_config, to_container
from taming.train.run_folder import RUN_DIR_ENV, RunPaths, check_sections, resolve_run, split_config

logger = logging.getLogger(__name__)

__all__ = ["RunPaths", "RunResult", "TrainOptions", "resolve_run", "run_training"]

DEFAULT_BASE_LR = 4.5e-6
DEFAULT_SAVE_EVERY = 500


@dataclass
class TrainOptions:
    """Options of `taming train` (the original `main.py` flags)."""

    base: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    train: bool = True
    test: bool = True
    resume: str | None = None
    resume_from_checkpoint: str | None = None
    name: str = ""
    postfix: str = ""
    seed: int = 23
    logdir: str = "logs"
    debug: bool = False
    project: str | None = None
    trainer: dict[str, Any] = field(default_factory=dict)
    save_every: int | None = None
    run_dir: str | None = None
    callbacks: list[Any] = field(default_factory=list)
    allow_extra_keys: bool = False
    skip_nonfinite: int = 0


@dataclass
class RunResult:
    """What a run left behind."""

    logdir: Path
    checkpoint: Path | None
    step_count: int
    global_step: int
    stopped_by: str | None = None
    module: Any = None
    trainer: Any = None


def _learning_rate(config: DictConfig, trainer: Any, module: Any, batch_size: int) -> float:
    base_lr = config.model.get("base_learning_rate")
    if base_lr is None:
        base_lr = DEFAULT_BASE_LR
        logger.warning("model.base_learning_rate not set; using %.2e", base_lr)
    acc, devices, nodes = module.accumulate_grad_batches, trainer.num_devices, trainer.num_nodes
    lr = acc * devices * nodes * batch_size * float(base_lr)
    if trainer.is_global_zero:
        logger.info(
            "learning rate = %d (accumulate_grad_batches) x %d (devices) x %d (nodes) x %d "
            "(batch_size) x %.2e (base_learning_rate) = %.2e",
            acc,
            devices,
            nodes,
            batch_size,
            float(base_lr),
            lr,
        )
    return lr


def run_training(opts: TrainOptions) -> RunResult:
    """Train (and/or test) as configured; see the module docstring.

    Raises:
        ConfigError: a bad config or option (one line naming the key).
        FileNotFoundError: a missing config, run folder, checkpoint or weights file.
        KeyboardInterrupt: interrupted (after saving `last.ckpt`).
    """
    import lightning.pytorch as pl
    from lightning.pytorch.utilities.exceptions import MisconfigurationException, SIGTERMException

    from taming.train.build import build_callbacks, build_module
    from taming.train.callbacks import ConfigSnapshot, ProgressBar
    from taming.train.checkpointing import (
        AtomicCheckpointIO,
        LastCheckpoint,
        checkpoint_steps,
        read_resume_checkpoint,
        warm_start,
    )
    from taming.train.loggers import build_loggers
    from taming.train.trainer_options import make_strategy, normalize_trainer_kwargs

    paths = resolve_run(opts)
    if paths.resumed:
        warnings.filterwarnings(
            "ignore", message=r"Checkpoint directory .* exists and is not empty"
        )
    if not paths.base:
        raise ConfigError("no config given: pass one or more YAML files with -b/--base")
    config = load_config(paths.base, opts.overrides)
    if not opts.allow_extra_keys:
        check_sections(config)
    project_cfg, lightning_cfg = split_config(config)
    if "model" not in project_cfg or "target" not in project_cfg.model:
        raise ConfigError(f"{paths.base[0]}: no 'model.target' in the config")
    if "data" not in project_cfg:
        raise ConfigError(f"{paths.base[0]}: no 'data' section in the config")
    from taming.runref import expand_run_refs  # stages named by their run: saved expanded

    expand_run_refs(project_cfg.model, source=" + ".join(map(str, paths.base)))

    trainer_cfg = to_container(lightning_cfg.get("trainer")) or {}
    trainer_cfg.update({k: v for k, v in opts.trainer.items() if v is not None})
    lightning_cfg.trainer = trainer_cfg
    trainer_kw, module_kw = normalize_trainer_kwargs(trainer_cfg)
    if opts.skip_nonfinite:
        module_kw["max_nonfinite_skips"] = int(opts.skip_nonfinite)
    if "resume_from_checkpoint" in trainer_kw:
        rfc = trainer_kw.pop("resume_from_checkpoint")
        if rfc and paths.ckpt_path is None:
            paths.ckpt_path = Path(rfc)
    last_cfg = to_container(lightning_cfg.get("last_checkpoint")) or {}
    save_every = opts.save_every or last_cfg.get("every_n_steps", DEFAULT_SAVE_EVERY)

    pl.seed_everything(opts.seed, workers=True, verbose=False)
    module = build_module(project_cfg.model, module_kw)
    data = instantiate_from_config(project_cfg.data, where="data")
    if not hasattr(data, "setup"):
        raise ConfigError("data.target: expected a data module (main.DataModuleFromConfig)")
    data.setup("fit")
    if opts.train and not data.has_split("train"):
        raise ConfigError("data.params.train: no training dataset configured")

    # The checkpoint to continue from: ours (resumed by Lightning) or an original one (weights
    # and step count only). `offset` = generator steps not counted by Lightning's global_step.
    ckpt_path, offset = None, 0
    if paths.ckpt_path is not None:
        content = read_resume_checkpoint(paths.ckpt_path)
        if content is not None:
            _check_fits(module, content, paths.ckpt_path)
            ckpt_path = str(paths.ckpt_path)
            global_step, step_count = checkpoint_steps(content)
            if step_count >= 0:
                offset = step_count - global_step // module.n_optimizers
            del content
        else:
            warm_start(module, paths.ckpt_path)
            offset = module.step_count
    if trainer_kw.get("max_steps") not in (None, -1):  # generator steps -> optimizer steps
        remaining = max(0, int(trainer_kw["max_steps"]) - offset)
        trainer_kw["max_steps"] = remaining * module.n_optimizers
    trainer_kw["strategy"] = make_strategy(
        trainer_kw, getattr(module, "ddp_find_unused_parameters", True)
    )
    snapshot = ConfigSnapshot(paths.logdir, paths.now, project=project_cfg, lightning=lightning_cfg)
    callbacks = build_callbacks(
        lightning_cfg,
        paths,
        module,
        has_validation=data.has_split("validation"),
        save_every=int(save_every or 0),
        config_snapshot=snapshot,
    )
    callbacks += list(opts.callbacks)
    if trainer_kw.get("enable_progress_bar", True) and not any(
        isinstance(cb, pl.callbacks.ProgressBar) for cb in callbacks
    ):
        callbacks.append(ProgressBar())
    loggers = build_loggers(paths.logdir, lightning_cfg.get("logger"))
    try:
        from taming.config import validate_kwargs

        validate_kwargs(pl.Trainer, trainer_kw, "lightning.trainer", name="Trainer")
        trainer = pl.Trainer(
            **trainer_kw,
            callbacks=callbacks,
            logger=loggers,
            plugins=[AtomicCheckpointIO()],
            default_root_dir=str(paths.logdir),
        )
    except (MisconfigurationException, ValueError, TypeError) as e:
        if isinstance(e, ConfigError):
            raise
        raise ConfigError(f"lightning.trainer: {str(e).splitlines()[0]}") from e

    batch_size = int(getattr(data, "batch_size", 1))
    module.learning_rate = _learning_rate(project_cfg, trainer, module, batch_size)

    if ckpt_path is not None and trainer.is_global_zero:
        logger.info("resuming from %s", ckpt_path)

    last = next(cb for cb in callbacks if isinstance(cb, LastCheckpoint))
    stopped_by = None
    previous_env = os.environ.get(RUN_DIR_ENV)
    os.environ[RUN_DIR_ENV] = str(paths.logdir)
    try:
        if opts.train:
            trainer.fit(module, datamodule=data, ckpt_path=ckpt_path)
            stopped_by = last.stopped_by
            if opts.test and data.has_split("test") and not stopped_by and not trainer.interrupted:
                trainer.test(module, datamodule=data)
        else:
            logger.info("-t/--train is off: evaluating only")
            if data.has_split("test"):
                trainer.test(module, datamodule=data, ckpt_path=ckpt_path)
            elif data.has_split("validation"):
                trainer.validate(module, datamodule=data, ckpt_path=ckpt_path)
    except SIGTERMException:
        stopped_by = last.stopped_by or "SIGTERM"
    except SystemExit as e:  # Lightning exits with 1 after a KeyboardInterrupt
        if isinstance(last.exception, KeyboardInterrupt):
            _log_resume_hint(paths.logdir, last, "interrupted")
            raise KeyboardInterrupt from e
        raise
    except BaseException:
        if trainer.is_global_zero and last.saved_path is not None:
            _log_resume_hint(paths.logdir, last, "training failed")
        if opts.debug and sys.stdin.isatty():
            import pdb

            pdb.post_mortem(sys.exc_info()[2])
        raise
    finally:
        if previous_env is None:
            os.environ.pop(RUN_DIR_ENV, None)
        else:
            os.environ[RUN_DIR_ENV] = previous_env
        if opts.debug and not paths.resumed and trainer.is_global_zero and paths.logdir.is_dir():
            dst = paths.logdir.parent / "debug_runs" / paths.logdir.name
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.move(str(paths.logdir), str(dst))
            logger.info("debug run moved to %s", dst)
            paths.logdir = dst
    if stopped_by and trainer.is_global_zero:
        _log_resume_hint(paths.logdir, last, f"stopped on {stopped_by}")
    ckpt = paths.logdir / "checkpoints" / "last.ckpt"
    step_count = int(module.step_count)
    if ckpt.is_file() and trainer.is_global_zero:  # also right after ddp_spawn's processes
        saved = read_resume_checkpoint(ckpt)
        if saved is not None and checkpoint_steps(saved)[1] >= 0:
            step_count = checkpoint_steps(saved)[1]
    return RunResult(
        logdir=paths.logdir,
        checkpoint=ckpt if ckpt.is_file() else None,
        step_count=step_count,
        global_step=int(trainer.global_step),
        stopped_by=stopped_by,
        module=module,
        trainer=trainer,
    )


def _log_resume_hint(logdir: Path, last: Any, what: str) -> None:
    if last.saved_path is not None:
        logger.warning(
            "%s; saved %s. Resume with: taming train -r %s", what, last.saved_path, logdir
        )
    else:
        logger.warning("%s; no checkpoint was written", what)


def _check_fits(module: Any, content: dict[str, Any], path: Path) -> None:
    """One line if a checkpoint's weights do not fit the configured model (another
    architecture, or an override that changes it on resume)."""
    from taming.compat.checkpoint import CheckpointError

    state = content.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{path.name}: no state_dict")
    own = module.state_dict()
    frozen = getattr(module, "frozen_prefix", None)
    mismatched = [k for k, v in state.items() if k in own and tuple(own[k].shape) != tuple(v.shape)]
    unexpected = [k for k in state if k not in own]
    missing = [k for k in own if k not in state and not (frozen and k.startswith(frozen))]
    if not (mismatched or unexpected or missing):
        return
    if mismatched:
        k = mismatched[0]
        what = f"{k} is {tuple(state[k].shape)} there, {tuple(own[k].shape)} here"
    elif unexpected:
        what = f"{len(unexpected)} weights the model lacks (e.g. {unexpected[0]})"
    else:
        what = f"{len(missing)} weights of the model are missing (e.g. {missing[0]})"
    raise CheckpointError(
        f"{path.name} does not fit the configured {type(module.model).__name__}: {what} "
        f"({len(mismatched)} shape mismatches, {len(unexpected)} unexpected, {len(missing)} "
        "missing); the config describes another architecture"
    )
