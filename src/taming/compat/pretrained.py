"""`save_pretrained` / `from_pretrained` on local folders: `config.yaml` + `model.safetensors`.

As in Hugging Face's `ModelHubMixin`, minus the hub: a model class that inherits
`PretrainedMixin` records the keyword arguments its outermost constructor was called with
(the constructor signature is the config), so `model.save_pretrained(folder)` can write
`{model: {target, params}}` beside its weights and `Class.from_pretrained(folder)` (or
`taming.load(folder)`) rebuilds it. `ckpt_path` entries are cleared in the saved config: the
saved weights hold everything. Weights are written as safetensors (tensors only, umask mode).
"""

from __future__ import annotations

import functools
import inspect
from pathlib import Path
from typing import Any

from taming.compat.checkpoint import CheckpointError, load_state_dict_strict, read_state_dict
from taming.compat.safetensors_io import save_safetensors

__all__ = ["PretrainedMixin"]

CONFIG_NAME = "config.yaml"
WEIGHTS_NAME = "model.safetensors"


def _plain(value: Any, where: str) -> Any:
    """YAML-able copy of a constructor argument (`ckpt_path`s cleared)."""
    from omegaconf import DictConfig, ListConfig, OmegaConf

    if isinstance(value, (DictConfig, ListConfig)):
        value = OmegaConf.to_container(value, resolve=True)
    if isinstance(value, dict):
        return {
            k: (None if k == "ckpt_path" else _plain(v, f"{where}.{k}")) for k, v in value.items()
        }
    if isinstance(value, (list, tuple)):
        return [_plain(v, where) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_pretrained: constructor argument {where} is a {type(value).__name__}")


class PretrainedMixin:
    """Adds `save_pretrained(folder)` and `from_pretrained(folder)` to an `nn.Module`."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        init = cls.__dict__.get("__init__")
        if init is None:
            return
        signature = inspect.signature(init)

        @functools.wraps(init)
        def recording_init(self, *args: Any, **kw: Any) -> None:
            outermost = not self.__dict__.get("_pretrained_in_init", False)
            if outermost:
                bound = signature.bind(self, *args, **kw)
                params: dict[str, Any] = {}
                for name, value in list(bound.arguments.items())[1:]:
                    kind = signature.parameters[name].kind
                    if kind is inspect.Parameter.VAR_KEYWORD:
                        params.update(value)
                    elif kind is not inspect.Parameter.VAR_POSITIONAL:
                        params[name] = value
                object.__setattr__(self, "_pretrained_params", params)
                object.__setattr__(self, "_pretrained_in_init", True)
            try:
                init(self, *args, **kw)
            finally:
                if outermost:
                    object.__setattr__(self, "_pretrained_in_init", False)

        cls.__init__ = recording_init

    def pretrained_config(self) -> dict[str, Any]:
        """`{target, params}` that rebuilds this model (weights aside)."""
        params = getattr(self, "_pretrained_params", None)
        if params is None:
            raise TypeError(f"{type(self).__name__}: constructor arguments were not recorded")
        target = f"{type(self).__module__}.{type(self).__qualname__}"
        plain = {k: (None if k == "ckpt_path" else _plain(v, k)) for k, v in params.items()}
        return {"target": target, "params": plain}

    def save_pretrained(self, folder: str | Path) -> Path:
        """Write `folder/config.yaml` and `folder/model.safetensors`; returns the folder."""
        from omegaconf import OmegaConf

        folder = Path(folder)
        config = self.pretrained_config()
        folder.mkdir(parents=True, exist_ok=True)
        save_safetensors(self.state_dict(), folder / WEIGHTS_NAME)
        OmegaConf.save(OmegaConf.create({"model": config}), folder / CONFIG_NAME)
        return folder

    @classmethod
    def from_pretrained(cls, folder: str | Path, device: str = "cpu"):
        """The model saved by `save_pretrained` in `folder`, in eval mode."""
        from taming.config import (
            ConfigError,
            get_obj_from_str,
            instantiate_from_config,
            load_config,
        )

        folder = Path(folder)
        cfg_path, weights = folder / CONFIG_NAME, folder / WEIGHTS_NAME
        for p in (cfg_path, weights):
            if not p.is_file():
                raise FileNotFoundError(f"{p}: missing (save_pretrained writes it)")
        cfg = load_config([cfg_path])
        model_cfg = cfg.get("model", cfg)
        target = get_obj_from_str(str(model_cfg.get("target")))
        if not (isinstance(target, type) and issubclass(target, cls)):
            raise ConfigError(
                f"{cfg_path}: holds a {model_cfg.get('target')}, not a {cls.__name__}"
            )
        model = instantiate_from_config(model_cfg, where=str(cfg_path))
        sd = read_state_dict(weights)
        if hasattr(model, "load_checkpoint_state"):
            model.load_checkpoint_state(sd, source=str(weights))
        else:
            load_state_dict_strict(model, sd, source=str(weights))
        if not isinstance(model, cls):
            raise CheckpointError(f"{cfg_path}: built a {type(model).__name__}")
        return model.to(device).eval()
