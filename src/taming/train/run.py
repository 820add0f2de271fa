"""Run a training job from YAML configs: the original `main.py`, on Lightning 2.

`run_training(TrainOptions(...))` is what `taming train` calls:

1. **Run folder.** A new run is `<logdir>/<%Y-%m-%dT%H-%M-%S>_<name><postfix>/` (name: `--name`,
   else the stem of the first `--base` config). `--resume RUN` (a run folder or a checkpoint
   inside it) reuses the folder, prepends its `configs/*.yaml` to `--base` and resumes from
   `checkpoints/last.ckpt` (or the given file): optimizer states, Lightning's loops and the
   generator-step count continue. A checkpoint of an original (PyTorch-Lightning 1.x) run is
   a warm start instead: its weights and step count are loaded, the optimizers start afresh.
2. **Config.** `--base` files merged left to right, then `key.sub=value` overrides; the
   `lightning:` section (`trainer`, `modelcheckpoint`, `callbacks`, `logger`,
   `last_checkpoint`) is split off. Trainer options from the command line override
   `lightning.trainer`; legacy PL 1.x options (`gpus`, `distributed_backend`,
   `resume_from_checkpoint`) are translated.
3. **Learning rate.** `accumulate_grad_batches * devices * num_nodes * batch_size *
   base_learning_rate`, logged at the start (the original's rule, plus nodes).
4. **Trainer.** Loggers: `metrics.csv` (+ TensorBoard when installed). Callbacks: `last.ckpt`
   every N steps / on signals / on errors (`taming.train.checkpointing`), `{epoch:06}.ckpt`
   (the best 3 by the model's `monitor` when there is validation data), image grids, learning
   rate, skipped-file report, progress bar. The configs are saved to `configs/` on rank 0.
5. **Steps.** `max_steps` and step intervals count generator steps (batches), as in the
   original; Lightning counts optimizer steps (two per batch for a VQGAN), so they are scaled.
6. **Distributed.** `--devices N` (CPU or GPU), `--num_nodes`, `--strategy ddp|ddp_spawn|fsdp|...`.
   DDP strategies are built with `find_unused_parameters=True` for GANs (each backward of the
   alternating updates reaches only one of the two networks), False for transformers.
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig, OmegaConf

from taming.compat.checkpoint import CheckpointError, read_checkpoint
from taming.config import ConfigError, instantiate_from_config, load_config, to_container

logger = logging.getLogger(__name__)

__all__ = ["RunResult", "TrainOptions", "resolve_run", "run_training"]

DEFAULT_BASE_LR = 4.5e-6
DEFAULT_SAVE_EVERY = 500
# rank 0 tells the processes that Lightning's DDP launcher starts which run folder to use
RUN_DIR_ENV = "TAMING_RUN_DIR"


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


@dataclass
class RunPaths:
    logdir: Path
    now: str
    ckpt_path: Path | None
    base: list[str]
    resumed: bool


# ---------------------------------------------------------------------------------------------
# run folder and configs


def _timestamp() -> str:
    return datetime.now().strftime("%Y-%m-%dT%H-%M-%S")


def resolve_run(opts: TrainOptions) -> RunPaths:
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


# ---------------------------------------------------------------------------------------------
# trainer options


def _parse_devices(value: Any) -> Any:
    if isinstance(value, str):
        v = value.strip()
        if v in ("", "auto"):
            return "auto"
        if "," in v:
            return [int(d) for d in v.split(",") if d.strip()]
        try:
            return int(v)
        except ValueError:
            return v
    if isinstance(value, list | tuple):
        return [int(d) for d in value]
    return value


def _device_count(accelerator: Any, devices: Any) -> int:
    if isinstance(devices, list):
        return len(devices)
    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if isinstance(devices, int):
        return devices if devices >= 0 else max(gpus, 1)
    if accelerator in ("auto", "gpu", "cuda", None) and gpus:
        return gpus
    return 1


def normalize_trainer_kwargs(trainer_cfg: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Translate `lightning.trainer` (incl. PL 1.x keys) -> `(Trainer kwargs, module kwargs)`.

    Module kwargs: `accumulate_grad_batches`, `gradient_clip_val`, `gradient_clip_algorithm`
    (manual optimization does them in `VQGANModule`).
    """
    kw = dict(trainer_cfg)
    module_kw: dict[str, Any] = {}
    for key in ("accumulate_grad_batches", "gradient_clip_val", "gradient_clip_algorithm"):
        if kw.get(key) is not None:
            module_kw[key] = kw.pop(key)
        else:
            kw.pop(key, None)
    if "gpus" in kw:  # PL 1.x: "0," = GPU 0, "0,1" = two GPUs, 2 = two GPUs, None/0 = CPU
        gpus = kw.pop("gpus")
        if gpus not in (None, "", 0, "0"):
            devices = _parse_devices(str(gpus))
            kw.setdefault("accelerator", "gpu")
            kw.setdefault("devices", devices)
    if "distributed_backend" in kw:  # PL 1.x
        backend = kw.pop("distributed_backend")
        if backend:
            kw.setdefault("strategy", backend)
    for dropped in ("checkpoint_callback", "weights_summary", "progress_bar_refresh_rate"):
        if dropped in kw:
            logger.warning("lightning.trainer.%s is a PL 1.x option; ignored", dropped)
            kw.pop(dropped)
    if "devices" in kw:
        kw["devices"] = _parse_devices(kw["devices"])
    return kw, module_kw


def make_strategy(kw: dict[str, Any], find_unused_parameters: bool = True) -> Any:
    """The strategy object: DDP variants with `find_unused_parameters` (default True: the
    alternating GAN updates each reach one network; a transformer uses all its parameters)."""
    from lightning.pytorch.strategies import DDPStrategy

    strategy = kw.get("strategy", "auto")
    if not isinstance(strategy, str):
        return strategy
    name = strategy.lower()
    start_methods = {
        "ddp": "popen",
        "ddp_spawn": "spawn",
        "ddp_fork": "fork",
        "ddp_notebook": "fork",
    }
    if name in start_methods:
        return DDPStrategy(
            find_unused_parameters=find_unused_parameters, start_method=start_methods[name]
        )
    if name == "auto":
        n = _device_count(kw.get("accelerator", "auto"), kw.get("devices", "auto"))
        if n * int(kw.get("num_nodes", 1)) > 1:
            return DDPStrategy(find_unused_parameters=find_unused_parameters)
    return strategy


# ---------------------------------------------------------------------------------------------
# model, data, callbacks


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
    paths: RunPaths,
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


def _lightning2_checkpoint_steps(path: Path) -> tuple[int, int] | None:
    """`(Lightning global_step, generator step_count)` of one of our checkpoints, else None."""
    try:
        content = torch.load(path, map_location="cpu", mmap=True, weights_only=True)
    except Exception:
        return None
    if not isinstance(content, dict) or "loops" not in content:
        return None
    global_step = int(content.get("global_step", 0))
    step_count = content.get("taming", {}).get("step_count")
    return global_step, int(step_count) if step_count is not None else -1


def _warm_start(module: Any, ckpt: Path) -> None:
    """Load an original (PL 1.x) checkpoint's weights and step count; optimizers start afresh."""
    content = read_checkpoint(ckpt)
    state = content.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt}: no state_dict")
    module.model.load_checkpoint_state(state, source=str(ckpt))
    module.step_count = int(content.get("global_step", 0) or 0)
    logger.warning(
        "%s is not a Lightning 2 checkpoint: loaded its weights and step count (%d); the "
        "optimizer states start afresh",
        ckpt,
        module.step_count,
    )


# ---------------------------------------------------------------------------------------------
# the run


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

    from taming.train.callbacks import ConfigSnapshot
    from taming.train.checkpointing import AtomicCheckpointIO, LastCheckpoint
    from taming.train.loggers import build_loggers

    paths = resolve_run(opts)
    if paths.resumed:
        warnings.filterwarnings(
            "ignore", message=r"Checkpoint directory .* exists and is not empty"
        )
    if not paths.base:
        raise ConfigError("no config given: pass one or more YAML files with -b/--base")
    config = load_config(paths.base, opts.overrides)
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
        steps = _lightning2_checkpoint_steps(paths.ckpt_path)
        if steps is not None:
            ckpt_path = str(paths.ckpt_path)
            global_step, step_count = steps
            if step_count >= 0:
                offset = step_count - global_step // module.n_optimizers
        else:
            _warm_start(module, paths.ckpt_path)
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
        saved = _lightning2_checkpoint_steps(ckpt)
        if saved is not None and saved[1] >= 0:
            step_count = saved[1]
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
