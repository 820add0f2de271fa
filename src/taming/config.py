"""Config handling: YAML merge with dotlist overrides, and `instantiate_from_config`.

Configs follow the original project's schema (`target: dotted.path.Class`, `params: {...}`).
Legacy target strings are mapped through `taming.compat.targets.LEGACY_TARGETS`, so the
original YAML files instantiate unchanged. Constructor signatures are the config: every
`params` key must be a keyword argument of the target, otherwise a `ConfigError` names it.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import types
import typing
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigError",
    "get_obj_from_str",
    "instantiate_from_config",
    "load_config",
    "to_container",
    "validate_kwargs",
]


class ConfigError(ValueError):
    """A config problem, reported in one line that names the offending key or path."""


def to_container(cfg: Any) -> Any:
    """Convert OmegaConf nodes to plain Python containers (resolving interpolations)."""
    if isinstance(cfg, DictConfig | ListConfig):
        return OmegaConf.to_container(cfg, resolve=True)
    return cfg


def load_config(
    paths: str | Path | Iterable[str | Path], overrides: Iterable[str] = ()
) -> DictConfig:
    """Load and merge YAML files left to right, then apply `key.sub=value` dotlist overrides."""
    if isinstance(paths, str | Path):
        paths = [paths]
    configs = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            configs.append(OmegaConf.load(p))
        except Exception as e:  # yaml errors carry line numbers; keep them in one line
            raise ConfigError(f"cannot parse config {p}: {str(e).splitlines()[0]}") from e
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key.sub=value")
    configs.append(OmegaConf.from_dotlist(overrides))
    return OmegaConf.merge(*configs) if configs else OmegaConf.create()


def get_obj_from_str(target: str) -> Any:
    """Resolve a dotted `module.Class` string, through the legacy alias table first."""
    from taming.compat.targets import LEGACY_TARGETS

    resolved = LEGACY_TARGETS.get(target, target)
    module, _, name = resolved.rpartition(".")
    if not module:
        raise ConfigError(f"target '{target}' is not a dotted path 'module.Name'")
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"unknown target '{target}': module '{module}' cannot be imported ({e})"
        ) from e
    try:
        return getattr(mod, name)
    except AttributeError:
        raise ConfigError(f"unknown target '{target}': '{module}' has no '{name}'") from None


_SPECIAL_TARGETS = ("__is_first_stage__", "__is_unconditional__")


def instantiate_from_config(config: Any, where: str = "config", **extra: Any) -> Any:
    """Build `target(**params)` from a `{target, params}` mapping.

    Args:
        config: mapping (dict or DictConfig) with a `target` and optional `params`.
        where: dotted location of this config, used in error messages.
        **extra: keyword arguments added to (and overriding) `params`.

    Raises:
        ConfigError: missing `target`, unknown target, an unknown key or a wrongly typed value.
    """
    if isinstance(config, str) and config in _SPECIAL_TARGETS:
        raise ConfigError(f"{where}: '{config}' is only meaningful inside a Net2NetTransformer")
    if not isinstance(config, Mapping | DictConfig) or "target" not in config:
        raise ConfigError(f"{where}: expected a mapping with a 'target' key, got {config!r:.80}")
    target = config["target"]
    params = to_container(config.get("params", None)) or {}
    if not isinstance(params, dict):
        raise ConfigError(f"{where}.params: expected a mapping, got {type(params).__name__}")
    params = {**params, **extra}
    obj = get_obj_from_str(target)
    validate_kwargs(obj, params, f"{where}.params", name=target)
    return obj(**params)


# ---------------------------------------------------------------------------------------------
# keyword validation against a signature


def _signature_params(fn: Any) -> tuple[dict[str, inspect.Parameter], bool, dict[str, Any]]:
    target = fn.__init__ if inspect.isclass(fn) else fn
    sig = inspect.signature(target)
    params = {
        k: p
        for k, p in sig.parameters.items()
        if k != "self" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }
    has_var_kw = any(p.kind == p.VAR_KEYWORD for p in sig.parameters.values())
    try:
        hints = typing.get_type_hints(target)
    except Exception:  # unresolved forward references: skip type checks
        hints = {}
    return params, has_var_kw, hints


def _type_ok(value: Any, hint: Any) -> bool:
    """Loose runtime check of simple annotations (int, float, bool, str, list, dict, unions)."""
    if hint is Any or hint is inspect.Parameter.empty:
        return True
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        return any(_type_ok(value, h) for h in typing.get_args(hint))
    if hint is type(None):
        return value is None
    if origin is typing.Literal:
        return value in typing.get_args(hint)
    base = origin or hint
    if base is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if base is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if base is bool:
        return isinstance(value, bool)
    if base is str:
        return isinstance(value, str)
    if base in (list, tuple, typing.Sequence) or base is Iterable:
        return isinstance(value, list | tuple | ListConfig)
    if base in (dict, Mapping):
        return isinstance(value, dict | Mapping | DictConfig)
    return True  # anything richer (modules, tensors, paths): not checked here


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def validate_kwargs(
    fn: Any, kwargs: Mapping[str, Any], where: str, name: str | None = None
) -> None:
    """Fail with one line if `kwargs` has a key `fn` does not accept, or a value of the wrong type.

    Required arguments that are missing are reported the same way.
    """
    params, has_var_kw, hints = _signature_params(fn)
    name = name or getattr(fn, "__qualname__", str(fn))
    if not has_var_kw:
        unknown = [k for k in kwargs if k not in params]
        if unknown:
            k = unknown[0]
            accepted = ", ".join(params)
            raise ConfigError(f"{where}.{k}: unknown key for {name} (accepted: {accepted})")
    missing = [
        k for k, p in params.items() if p.default is inspect.Parameter.empty and k not in kwargs
    ]
    if missing:
        raise ConfigError(f"{where}.{missing[0]}: required key missing for {name}")
    for k, v in kwargs.items():
        hint = hints.get(k)
        if hint is not None and not _type_ok(v, hint):
            got = f"{type(v).__name__} {v!r:.60}"
            raise ConfigError(f"{where}.{k}: expected {_type_name(hint)} for {name}, got {got}")
