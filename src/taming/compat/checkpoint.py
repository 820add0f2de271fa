"""Read original (PyTorch-Lightning 1.x) checkpoints safely, filter keys, load strictly.

Three formats are read: a Lightning `.ckpt` (a pickled dict with a `state_dict` entry), a plain
pickled state dict, and `.safetensors`. Pickles are opened with torch's restricted
`weights_only` unpickler. Old Lightning checkpoints reference classes such as
`pytorch_lightning.callbacks.model_checkpoint.ModelCheckpoint` (as dict keys of the callback
states); those globals come from a short list of known, harmless namespaces and are replaced by
inert stand-in classes, so neither Lightning nor any other code is imported or run. Any other
global (for example `os.system`) means the file can execute code when unpickled: it is refused
unless the caller passes `unsafe=True` for a file they trust.

Loading is a pure key filter (`filter_state_dict`) followed by a strict load
(`load_state_dict_strict`) that reports missing and unexpected keys by name.
"""

from __future__ import annotations

import logging
import pickle
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

logger = logging.getLogger(__name__)

__all__ = [
    "CheckpointError",
    "UnsafeCheckpointError",
    "filter_state_dict",
    "make_stand_in",
    "load_state_dict_strict",
    "read_checkpoint",
    "read_pickle",
    "read_state_dict",
    "torch_load",
    "strip_trainer_prefix",
]


class CheckpointError(RuntimeError):
    """A checkpoint cannot be read or does not fit the model."""


class UnsafeCheckpointError(CheckpointError):
    """A pickled checkpoint references globals that could run arbitrary code."""


# Namespaces whose globals may appear in benign checkpoints (callback-state keys, hparams,
# numpy scalars in callback states). They are replaced by inert stand-ins, never imported.
_STUBBABLE_PREFIXES = (
    "pytorch_lightning.",
    "lightning.",
    "lightning_fabric.",
    "omegaconf.",
    "argparse.Namespace",
    "typing.",
    "numpy.",
    "pathlib.",
    "test_tube.",
)


def _make_stub(qualified: str) -> type:
    module, _, name = qualified.rpartition(".")

    class _Stub:
        """Inert stand-in for a class that an old checkpoint refers to."""

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.args, self.kwargs = args, kwargs

        def __setstate__(self, state: Any) -> None:
            self.state = state

        def __call__(self, *args: Any, **kwargs: Any) -> _Stub:
            return _Stub(*args, **kwargs)

    _Stub.__module__ = module
    _Stub.__name__ = _Stub.__qualname__ = name
    return _Stub


make_stand_in = _make_stub  # public name for converters that read other pickled layouts

_TRUST_HINT = "If you trust this file, load it with unsafe=True (CLI: --unsafe)."


def _refused(path: Path, error: Exception) -> UnsafeCheckpointError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return UnsafeCheckpointError(
        f"{path}: refused by the restricted unpickler ({reason}). {_TRUST_HINT}"
    )


def _unreadable(path: Path, error: BaseException) -> CheckpointError:
    reason = str(error).splitlines()[0] if str(error) else type(error).__name__
    return CheckpointError(
        f"{path.name}: cannot read this checkpoint, the file is truncated, damaged or not a "
        f"checkpoint ({type(error).__name__}: {reason[:120]})"
    )


def torch_load(path: str | Path, **kwargs: Any) -> Any:
    """`torch.load(path, map_location="cpu", **kwargs)` with one-line errors for an empty,
    truncated or foreign file (`CheckpointError` naming it); a refusal of the restricted
    unpickler (`pickle.UnpicklingError`) passes through."""
    path = Path(path)
    if path.is_file() and path.stat().st_size == 0:
        raise CheckpointError(f"{path.name}: the checkpoint file is empty (0 bytes): {path}")
    try:
        return torch.load(path, map_location="cpu", **kwargs)
    except pickle.UnpicklingError:
        raise
    except (RuntimeError, EOFError, ValueError, OSError, KeyError, IndexError) as e:
        if isinstance(e, CheckpointError | FileNotFoundError):
            raise
        raise _unreadable(path, e) from e


def _load_pickle(path: Path, unsafe: bool) -> Any:
    if unsafe:
        logger.warning("loading %s with weights_only=False (unsafe=True): code in it may run", path)
        return torch_load(path, weights_only=False)
    try:
        return torch_load(path, weights_only=True)
    except pickle.UnpicklingError as first_error:
        try:
            names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
        except Exception:  # legacy (non-zip) format: no listing available
            raise _refused(path, first_error) from first_error
        dangerous = sorted(n for n in names if not n.startswith(_STUBBABLE_PREFIXES))
        if dangerous:
            raise UnsafeCheckpointError(
                f"{path}: refused, it references {', '.join(dangerous)}, which could run "
                f"arbitrary code when unpickled. {_TRUST_HINT}"
            ) from None
        with torch.serialization.safe_globals([_make_stub(n) for n in names]):
            try:
                return torch_load(path, weights_only=True)
            except pickle.UnpicklingError as e:
                raise _refused(path, e) from e


def read_pickle(path: str | Path, unsafe: bool = False) -> Any:
    """Whatever a pickled checkpoint holds, read with the restricted unpickler (see above)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    return _load_pickle(path, unsafe)


def read_checkpoint(path: str | Path, unsafe: bool = False) -> dict[str, Any]:
    """Read a checkpoint file into a dict (no model needed, Lightning not imported).

    Args:
        path: `.ckpt`/`.pt`/`.pth` pickle or `.safetensors` file.
        unsafe: allow arbitrary pickled objects (only for files you trust).

    Returns:
        The top-level dict. A safetensors file, or a pickled bare state dict, is returned as
        `{"state_dict": ...}` so callers can always read `["state_dict"]`.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        try:
            return {"state_dict": load_file(str(path), device="cpu")}
        except Exception as e:  # SafetensorError: truncated header or data
            raise CheckpointError(
                f"{path.name}: cannot read this safetensors file, it is truncated or damaged "
                f"({str(e).splitlines()[0][:120] if str(e) else type(e).__name__})"
            ) from e
    obj = _load_pickle(path, unsafe)
    if not isinstance(obj, Mapping):
        raise CheckpointError(f"{path}: expected a dict, found {type(obj).__name__}")
    if "state_dict" in obj and isinstance(obj["state_dict"], Mapping):
        return dict(obj)
    if obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {"state_dict": dict(obj)}
    raise CheckpointError(f"{path}: no 'state_dict' entry and not a bare state dict")


def read_state_dict(path: str | Path, unsafe: bool = False) -> dict[str, torch.Tensor]:
    """The tensors of a checkpoint's `state_dict` (see `read_checkpoint`)."""
    sd = read_checkpoint(path, unsafe=unsafe)["state_dict"]
    bad = [k for k, v in sd.items() if not isinstance(v, torch.Tensor)]
    if bad:
        raise CheckpointError(f"{path}: state_dict entry '{bad[0]}' is not a tensor")
    return dict(sd)


def strip_trainer_prefix(state_dict: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Remove the `model.` prefix of our Lightning checkpoints (the trainer holds the model as
    `self.model`) when every key has it; original checkpoints never do."""
    if state_dict and all(k.startswith("model.") for k in state_dict):
        return filter_state_dict(state_dict, prefix="model.")
    return dict(state_dict)


def filter_state_dict(
    state_dict: Mapping[str, torch.Tensor],
    *,
    prefix: str = "",
    strip: Iterable[str] = (),
    drop: Iterable[str] = (),
    drop_rule: Callable[[str], bool] | None = None,
) -> dict[str, torch.Tensor]:
    """Pure key filter: keep keys under `prefix` (removed), strip leading prefixes, drop keys.

    Args:
        state_dict: source mapping; not modified.
        prefix: keep only keys starting with it, with it removed (e.g. `"cond_stage_model."`).
        strip: leading prefixes removed where present (e.g. `"model."` of our Lightning module).
        drop: key prefixes to drop (the original's `ignore_keys` semantics: prefix match).
        drop_rule: extra predicate; keys for which it returns True are dropped.
    """
    drop = tuple(drop)
    strip = tuple(strip)
    out: dict[str, torch.Tensor] = {}
    for k, v in state_dict.items():
        if prefix:
            if not k.startswith(prefix):
                continue
            k = k[len(prefix) :]
        for s in strip:
            if k.startswith(s):
                k = k[len(s) :]
                break
        if drop and k.startswith(drop):
            continue
        if drop_rule is not None and drop_rule(k):
            continue
        out[k] = v
    return out


def load_state_dict_strict(
    module: nn.Module,
    state_dict: Mapping[str, torch.Tensor],
    *,
    allow_missing: Callable[[str], bool] | None = None,
    source: str = "checkpoint",
) -> None:
    """Load strictly; report every missing/unexpected key and shape mismatch by name.

    Args:
        module: target module.
        state_dict: filtered state dict.
        allow_missing: predicate for keys that may be absent because they are restored from
            elsewhere (e.g. the frozen VGG16 trunk of LPIPS, loaded from its weights file).
        source: name of the checkpoint for messages.
    """
    own = module.state_dict()
    mismatched = [
        f"{k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
        for k, v in state_dict.items()
        if k in own and own[k].shape != v.shape
    ]
    if mismatched:
        raise CheckpointError(
            f"{source} does not fit {type(module).__name__}: shape mismatch for "
            + "; ".join(mismatched[:10])
            + (f" (+{len(mismatched) - 10} more)" if len(mismatched) > 10 else "")
        )
    result = module.load_state_dict(state_dict, strict=False)
    missing = [k for k in result.missing_keys if not (allow_missing and allow_missing(k))]
    unexpected = list(result.unexpected_keys)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): " + ", ".join(missing[:20]))
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): " + ", ".join(unexpected[:20]))
        raise CheckpointError(f"{source} does not fit {type(module).__name__}: " + "; ".join(parts))
