"""Config handling: YAML merge with dotlist overrides, and `instantiate_from_config`.

Configs follow the original project's schema (`target: dotted.path.Class`, `params: {...}`).
Legacy target strings are mapped through `taming.compat.targets.LEGACY_TARGETS`, so the
original YAML files instantiate unchanged. Constructor signatures are the config: every
`params` key must be a keyword argument of the target, otherwise a `ConfigError` names it.

Configs are a trust boundary: a `target:` is resolved only through an allow list (classes
of this package, the original targets of the alias table, and classes under `torch.nn`,
`torch.optim` and Lightning's callbacks/loggers). Anything else (`os.system`, a function,
a module of your own) is refused before it is imported, unless the caller trusts the config:
`with trusted_config(): ...` (CLI `--trust-config`, `taming.load(..., trust_config=True)`),
or the environment variable `TAMING_TRUSTED_TARGETS` lists its prefix (comma separated,
e.g. `mypkg.,lab.models.`).
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import importlib
import inspect
import logging
import os
import types
import typing
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, ListConfig, OmegaConf

logger = logging.getLogger(__name__)

__all__ = [
    "ConfigError",
    "check_keys",
    "get_obj_from_str",
    "instantiate_from_config",
    "load_config",
    "to_container",
    "trusted_config",
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


_TRUST: contextvars.ContextVar[bool] = contextvars.ContextVar("taming_trust_config", default=False)


@contextlib.contextmanager
def trusted_config(trust: bool = True) -> Iterator[None]:
    """Within this block, config targets are imported without the allow list (`trust=True`)."""
    token = _TRUST.set(bool(trust) or _TRUST.get())
    try:
        yield
    finally:
        _TRUST.reset(token)


def _trusted_prefixes() -> tuple[str, ...]:
    from taming.compat.targets import TRUSTED_TARGETS_ENV

    raw = os.environ.get(TRUSTED_TARGETS_ENV, "")
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _refuse(target: str, where: str) -> ConfigError:
    from taming.compat.targets import TRUSTED_TARGETS_ENV

    return ConfigError(
        f"{where}: target '{target}' is not on the allow list (classes of taming, the "
        "original targets, torch.nn, torch.optim, Lightning callbacks/loggers); configs can run "
        "code, so if you trust this one pass --trust-config (Python: trust_config=True) or add "
        f"its prefix to {TRUSTED_TARGETS_ENV}"
    )


def get_obj_from_str(target: str, where: str = "target") -> Any:
    """Resolve a dotted `module.Class` string, through the legacy alias table first.

    Untrusted (the default), only allow-listed targets resolve, and only to classes; the
    check runs before anything is imported.
    """
    from taming.compat.targets import LEGACY_TARGETS, allowed_prefix

    if not isinstance(target, str):
        raise ConfigError(f"{where}: target must be a dotted path string, got {target!r:.60}")
    resolved = LEGACY_TARGETS.get(target, target)
    module, _, name = resolved.rpartition(".")
    if not module:
        raise ConfigError(f"{where}: target '{target}' is not a dotted path 'module.Name'")
    trusted = _TRUST.get() or any(resolved.startswith(p) for p in _trusted_prefixes())
    if not trusted and not allowed_prefix(resolved):
        raise _refuse(target, where)
    try:
        mod = importlib.import_module(module)
    except ImportError as e:
        raise ConfigError(
            f"{where}: unknown target '{target}': module '{module}' cannot be imported ({e})"
        ) from e
    try:
        obj = getattr(mod, name)
    except AttributeError:
        raise ConfigError(
            f"{where}: unknown target '{target}': '{module}' has no '{name}'"
        ) from None
    if not trusted and not inspect.isclass(obj):
        raise _refuse(target, where)
    return obj


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
    obj = get_obj_from_str(target, where=f"{where}.target")
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
            raise ConfigError(
                f"{where}.{k}: unknown key for {name}{_did_you_mean(k, params)} "
                f"(accepted: {accepted})"
            )
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


def _did_you_mean(key: str, valid: Iterable[str]) -> str:
    close = difflib.get_close_matches(key, list(valid), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def check_keys(section: Any, valid: Iterable[str], where: str) -> None:
    """Fail with one line naming the first key of `section` not in `valid` (closest name too)."""
    if not isinstance(section, Mapping | DictConfig):
        return
    valid = list(valid)
    for key in section:
        if key not in valid:
            hint = _did_you_mean(str(key), valid)
            prefix = f"{where}." if where else ""
            raise ConfigError(
                f"{prefix}{key}: unknown key{hint} (valid: {', '.join(valid)}; pass "
                "--allow-extra-keys to keep your own sections)"
            )
