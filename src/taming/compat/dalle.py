"""OpenAI's DALL-E dVAE pickles (`encoder.pkl`, `decoder.pkl`) -> `taming.autoencoder.dalle`.

The `dall_e` package publishes whole pickled `nn.Module`s, not state dicts. They are read with
torch's restricted (`weights_only`) unpickler: every class the pickle names must be a known
`dall_e` class (`dall_e.encoder.Encoder/EncoderBlock`, `dall_e.decoder.Decoder/DecoderBlock`,
`dall_e.utils.Conv2d`) or a `torch.nn.modules` class, and each is replaced by an inert stand-in
that only stores its pickled state; no code of the pickle (and no `dall_e` import) runs. Any
other global, such as `os.system`, makes the file refused. The modules' parameters are then
collected from the stand-ins' `_parameters`/`_modules` into a state dict with the package's
key names, and the hyperparameters from their attributes.
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from taming.compat.checkpoint import CheckpointError, UnsafeCheckpointError, make_stand_in
from taming.compat.keymap import Converted, KeyMap, Rule

__all__ = ["DALLE_CLASSES", "convert_dalle", "read_dalle_module"]

DALLE_CLASSES = {
    "encoder": "dall_e.encoder.Encoder",
    "decoder": "dall_e.decoder.Decoder",
}
_KNOWN_DALLE = (
    "dall_e.encoder.Encoder",
    "dall_e.encoder.EncoderBlock",
    "dall_e.decoder.Decoder",
    "dall_e.decoder.DecoderBlock",
    "dall_e.utils.Conv2d",
)
_TORCH_MODULES = "torch.nn.modules."
_HPARAMS = {
    "encoder": ("group_count", "n_hid", "n_blk_per_group", "input_channels", "vocab_size"),
    "decoder": (
        "group_count",
        "n_init",
        "n_hid",
        "n_blk_per_group",
        "output_channels",
        "vocab_size",
    ),
}


def _check_globals(path: Path) -> list[str]:
    try:
        names = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except Exception as e:  # not a zip checkpoint: nothing can be checked before running it
        raise UnsafeCheckpointError(f"{path}: not a torch zip archive, refused ({e})") from None
    bad = sorted(n for n in names if n not in _KNOWN_DALLE and not n.startswith(_TORCH_MODULES))
    if bad:
        raise UnsafeCheckpointError(
            f"{path}: refused, it references {', '.join(bad)}, which is neither a dall_e nor a "
            "torch.nn class and could run code when unpickled"
        )
    return list(names)


def _tree(obj: Any, prefix: str, out: dict[str, torch.Tensor]) -> None:
    state = getattr(obj, "state", None)
    if not isinstance(state, Mapping):
        raise CheckpointError(f"unexpected object at '{prefix or 'root'}': {type(obj).__name__}")
    for name, p in (state.get("_parameters") or {}).items():
        if p is not None:
            out[f"{prefix}{name}"] = p.detach().clone()
    for name, p in (state.get("_buffers") or {}).items():
        if p is not None:
            out[f"{prefix}{name}"] = p.detach().clone()
    for name, child in (state.get("_modules") or {}).items():
        _tree(child, f"{prefix}{name}.", out)


def read_dalle_module(
    path: str | Path, part: str
) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """Hyperparameters and state dict of a pickled dall_e `Encoder` (`part="encoder"`) or
    `Decoder` (`"decoder"`), read without running any of the pickle's code."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file")
    names = _check_globals(path)
    stand_ins = [make_stand_in(n) for n in names]
    try:
        with torch.serialization.safe_globals(stand_ins):
            obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as e:
        raise UnsafeCheckpointError(f"{path}: refused by the restricted unpickler ({e})") from None
    cls = f"{type(obj).__module__}.{type(obj).__name__}"
    if cls != DALLE_CLASSES[part]:
        raise CheckpointError(f"{path}: expected a pickled {DALLE_CLASSES[part]}, found {cls}")
    sd: dict[str, torch.Tensor] = {}
    _tree(obj, "", sd)
    hparams = {k: obj.state[k] for k in _HPARAMS[part] if k in obj.state}
    return {k: int(v) for k, v in hparams.items()}, sd


_KEYMAP = KeyMap(
    [Rule(r"(encoder|decoder)\.(blocks\..+\.[wb])", r"\1.\2")],
    name="DALL-E",
)


def convert_dalle(folder: str | Path) -> Converted:
    """`encoder.pkl` + `decoder.pkl` in `folder` -> config and state dict of `DalleVAE`."""
    folder = Path(folder)
    params: dict[str, Any] = {}
    merged: dict[str, torch.Tensor] = {}
    for part in ("encoder", "decoder"):
        hp, sd = read_dalle_module(folder / f"{part}.pkl", part)
        params[part] = hp
        merged.update({f"{part}.{k}": v for k, v in sd.items()})
    sd, report = _KEYMAP.apply(merged, source=str(folder))
    return Converted({"target": "taming.autoencoder.dalle.DalleVAE", "params": params}, sd, report)
