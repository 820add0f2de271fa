"""Stages named by their training run: a transformer config that reads its tokenizer's run.

The second stage of "Taming Transformers" (Esser, Rombach, Ommer, CVPR 2021) is trained over
the codes of a frozen first stage. The original configs repeat the first stage's architecture
and point `ckpt_path` at its checkpoint; the copy must be kept in sync by hand. Here a stage
config (`first_stage_config`, or a VQ `cond_stage_config`, of a `Net2NetTransformer`) may
instead name the run that trained it:

    first_stage_config: {run: logs/2026-01-01T12-00-00_folder_small}
    first_stage_config: {target: ..., params: {ckpt_path: logs/<run>/checkpoints/last.ckpt, ...}}

Both take the architecture from the run's `configs/*-project.yaml` (merged in sorted order,
as `taming.load` does) and the weights from its `checkpoints/last.ckpt` (or the `ckpt_path`
given; `params: {ckpt_path: null}` beside `run:` takes the architecture only). Keys the config
states itself must agree with the run's config; a disagreement is a one-line `ConfigError`
naming both configs. A `ckpt_path` outside a run folder leaves the
config as it is, so original configs keep their form and meaning.

The transformer's `vocab_size` and `block_size` may be null: they follow the stages (the
first stage's codebook size, or the larger of the two codebooks with a VQ cond stage; SOS or
cond tokens plus `(size / f)^2` image codes, minus one), where `size` is the run's training
image size (else `ddconfig.resolution`) and `f = 2^(len(ch_mult) - 1)`. Stated values that are
too small for a stage named by its run are errors naming both configs.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import DictConfig, OmegaConf

from taming.config import ConfigError, instantiate_from_config, load_config, to_container

logger = logging.getLogger(__name__)

__all__ = [
    "RunRef",
    "expand_run_refs",
    "find_run",
    "read_run",
    "resolve_net2net_configs",
    "resolve_stage_config",
    "run_image_size",
]

_RUN_CKPTS = ("checkpoints/last.ckpt", "ckpts/last.ckpt")
_CKPT_FOLDERS = ("checkpoints", "ckpts")
# stage keys that describe how a stage is used here, not its architecture
_USE_KEYS = frozenset({"ckpt_path", "lossconfig", "ignore_keys", "monitor", "image_key"})
_DUMMY_LOSS = {"target": "taming.losses.dummy.DummyLoss"}
_NET2NET = "taming.cond.net2net.Net2NetTransformer"


class RunRef(NamedTuple):
    """A training run folder: its config files, merged config (plain dict) and checkpoint."""

    folder: Path
    configs: list[Path]
    config: dict
    ckpt: Path | None

    @property
    def model(self) -> dict:
        return self.config.get("model") or {}

    @property
    def label(self) -> str:
        return str(self.configs[-1])


def _project_configs(folder: Path) -> list[Path]:
    cfg_dir = folder / "configs"
    return sorted(cfg_dir.glob("*-project.yaml")) if cfg_dir.is_dir() else []


def find_run(path: str | Path) -> Path | None:
    """The run folder of `path` (a run folder, or a checkpoint in its `checkpoints/`), or None."""
    path = Path(path)
    if path.is_dir() and _project_configs(path):
        return path
    if path.parent.name in _CKPT_FOLDERS and _project_configs(path.parent.parent):
        return path.parent.parent
    return None


def read_run(path: str | Path, where: str = "run") -> RunRef:
    """Read the run folder `path` (or the run holding the checkpoint `path`).

    Raises:
        ConfigError: no run folder there, or its config has no model.
    """
    folder = find_run(path)
    if folder is None:
        raise ConfigError(
            f"{where}: {path} is not a run folder (no configs/*-project.yaml); name the folder "
            "that `taming train` created, e.g. logs/<date>_<name>"
        )
    configs = _project_configs(folder)
    config = to_container(load_config(configs))
    if "target" not in (config.get("model") or {}):
        raise ConfigError(f"{where}: {configs[-1]} has no model.target")
    ckpt = next((folder / c for c in _RUN_CKPTS if (folder / c).is_file()), None)
    return RunRef(folder, configs, config, ckpt)


def run_image_size(run: RunRef) -> int | None:
    """The image size the run trained on (its train, else validation data size), else its
    `ddconfig.resolution`, else None."""
    data = (run.config.get("data") or {}).get("params") or {}
    for split in ("train", "validation"):
        size = ((data.get(split) or {}).get("params") or {}).get("size")
        if isinstance(size, int):
            return size
    return ((run.model.get("params") or {}).get("ddconfig") or {}).get("resolution")


def _canonical_target(target: Any) -> Any:
    from taming.compat.targets import LEGACY_TARGETS

    return LEGACY_TARGETS.get(target, target)


def _first_difference(mine: Any, theirs: Any, key: str) -> tuple[str, Any, Any] | None:
    """The first key (dotted) whose value differs; nested mappings compared key by key."""
    if isinstance(mine, Mapping) and isinstance(theirs, Mapping):
        for k, v in mine.items():
            sub = f"{key}.{k}"
            if k not in theirs:
                if v is not None:
                    return sub, v, "(not set)"
                continue
            found = _first_difference(v, theirs[k], sub)
            if found is not None:
                return found
        return None
    if isinstance(mine, list | tuple) and isinstance(theirs, list | tuple):
        return None if list(mine) == list(theirs) else (key, mine, theirs)
    return None if mine == theirs else (key, mine, theirs)


def resolve_stage_config(config: Any, where: str, source: str = "this config") -> Any:
    """A stage config with its run reference resolved (see the module docstring).

    Args:
        config: the stage config (mapping or DictConfig); strings such as
            `"__is_unconditional__"` and configs without a run reference come back unchanged.
        where: its dotted location (`model.params.first_stage_config`), for messages.
        source: the config file it comes from, for messages.

    Returns:
        A plain `{target, params}` dict whose params are the run's, with `ckpt_path` set and a
        `DummyLoss` (the stage is frozen; its training loss is never built).

    Raises:
        ConfigError: the run is missing, has no checkpoint, is not a first stage, or disagrees
            with what the config states (naming both configs).
    """
    return _resolve_stage(config, where, source)[0]


def _resolve_stage(config: Any, where: str, source: str) -> tuple[Any, RunRef | None]:
    config = to_container(config)
    if not isinstance(config, Mapping):
        return config, None
    params = config.get("params") or {}
    ckpt = params.get("ckpt_path")
    if config.get("run") is not None:
        run = read_run(config["run"], where=f"{where}.run")
        owner = find_run(ckpt) if ckpt is not None else None
        if ckpt is not None and (owner is None or owner.resolve() != run.folder.resolve()):
            raise ConfigError(
                f"{where}.params.ckpt_path: {ckpt} in {source} is not a checkpoint of the run "
                f"{run.folder} that {where}.run names; drop one of them"
            )
    elif ckpt is not None and find_run(ckpt) is not None:
        run = read_run(ckpt, where=f"{where}.params.ckpt_path")
    elif "run" in config and "target" not in config:
        raise ConfigError(
            f"{where}.run: not set; name the tokenizer's run folder (taming train "
            f"--first-stage logs/<run>, or {where}.run=logs/<run>)"
        )
    else:
        return config, None
    theirs = run.model
    if _canonical_target(theirs["target"]) == _NET2NET:
        raise ConfigError(f"{where}: {run.folder} is a transformer run, not a first stage")
    their_params = dict(theirs.get("params") or {})
    if "target" in config and _canonical_target(config["target"]) != _canonical_target(
        theirs["target"]
    ):
        raise ConfigError(
            f"{where}.target: {config['target']} in {source}, but {theirs['target']} in "
            f"{run.label} (the run's config)"
        )
    mine = {k: v for k, v in params.items() if k not in _USE_KEYS}
    diff = _first_difference(mine, {k: v for k, v in their_params.items()}, f"{where}.params")
    if diff is not None:
        key, a, b = diff
        raise ConfigError(
            f"{key}: {a!r} in {source}, but {b!r} in {run.label} (the run's config); drop "
            f"it from {source} to take the run's architecture"
        )
    if "ckpt_path" not in params:  # `ckpt_path: null` stated: the architecture only
        ckpt = run.ckpt
        if ckpt is None:
            raise ConfigError(
                f"{where}: {run.folder} has no checkpoint yet (checkpoints/last.ckpt); train "
                "it first or set ckpt_path"
            )
    resolved = {k: v for k, v in their_params.items() if k != "ckpt_path"}
    if "lossconfig" in resolved:
        resolved["lossconfig"] = dict(_DUMMY_LOSS)
    if params.get("ignore_keys"):
        resolved["ignore_keys"] = params["ignore_keys"]
    resolved["ckpt_path"] = None if ckpt is None else str(ckpt)
    logger.info("%s: %s from run %s (%s)", where, theirs["target"], run.folder, ckpt)
    return {"target": theirs["target"], "params": resolved}, run


def _codebook_size(params: Mapping[str, Any]) -> int | None:
    if params.get("n_embed") is not None:
        return int(params["n_embed"])
    quantizer = params.get("quantizer_config")
    if quantizer is not None:  # FSQ, LFQ, ...: the implicit codebook size of the quantizer
        return int(instantiate_from_config(quantizer, where="quantizer_config").vocab_size)
    return None


def _tokens_per_image(params: Mapping[str, Any], size: int | None) -> int | None:
    dd = params.get("ddconfig") or {}
    size = size or dd.get("resolution")
    if not dd.get("ch_mult") or not size:
        return None
    f = 2 ** (len(dd["ch_mult"]) - 1)
    return math.ceil(size / f) ** 2


def _is_vq_stage(config: Any) -> bool:
    return isinstance(config, Mapping) and "ddconfig" in (config.get("params") or {})


def resolve_net2net_configs(
    transformer_config: Any,
    first_stage_config: Any,
    cond_stage_config: Any,
    source: str = "this config",
    where: str = "model.params",
) -> tuple[Any, Any, Any]:
    """The three configs of a `Net2NetTransformer` with run references resolved and null
    `vocab_size`/`block_size` filled (see the module docstring)."""
    first, first_run = _resolve_stage(first_stage_config, f"{where}.first_stage_config", source)
    cond, cond_run = _resolve_stage(cond_stage_config, f"{where}.cond_stage_config", source)
    tcfg = to_container(transformer_config)
    if not isinstance(tcfg, Mapping):
        return transformer_config, first, cond
    tparams = dict(tcfg.get("params") or {})
    need_vocab, need_block, named = None, None, None
    if _is_vq_stage(first):
        size = run_image_size(first_run) if first_run else None
        named = first_run.label if first_run else None
        need_vocab = _codebook_size(first["params"])
        tokens = _tokens_per_image(first["params"], size)
        cond_len = 1
        if _is_vq_stage(cond):
            c_size = run_image_size(cond_run) if cond_run else None
            named = named or (cond_run.label if cond_run else None)
            c_vocab = _codebook_size(cond["params"])
            if need_vocab is not None and c_vocab is not None:
                need_vocab = max(need_vocab, c_vocab)
            cond_len = _tokens_per_image(cond["params"], c_size)
        if tokens is not None and cond_len is not None:
            need_block = cond_len + tokens - 1
    for key, need in (("vocab_size", need_vocab), ("block_size", need_block)):
        have = tparams.get(key)
        if have is None and need is not None:
            tparams[key] = need
            logger.info("%s.transformer_config.params.%s = %d (from the stages)", where, key, need)
        elif have is None and key in tparams:
            raise ConfigError(
                f"{where}.transformer_config.params.{key}: null, but the first stage does not "
                "say its size; set it"
            )
        elif named is not None and need is not None and have < need:
            raise ConfigError(
                f"{where}.transformer_config.params.{key}: {have} in {source}, but the first "
                f"stage of {named} needs {need}; set it to null to follow the run"
            )
    if tparams == dict(tcfg.get("params") or {}):
        return transformer_config, first, cond
    return {**tcfg, "params": tparams}, first, cond


def expand_run_refs(model_cfg: DictConfig, source: str = "this config") -> None:
    """Resolve a `Net2NetTransformer` model config in place (before it is saved with a run),
    so the saved config states the stages' architecture and sizes in the original form."""
    if _canonical_target(model_cfg.get("target")) != _NET2NET or "params" not in model_cfg:
        return
    params = model_cfg.params
    if "first_stage_config" not in params or "transformer_config" not in params:
        return
    cond_key = params.get("cond_stage_config")
    t, f, c = resolve_net2net_configs(
        params.transformer_config, params.first_stage_config, cond_key, source=source
    )
    for key, value in (("transformer_config", t), ("first_stage_config", f)):
        params[key] = OmegaConf.create(value) if isinstance(value, dict) else value
    if isinstance(c, dict):
        params["cond_stage_config"] = OmegaConf.create(c)
