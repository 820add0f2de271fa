"""Trainer options of `taming train`: `lightning.trainer` (PL 1.x keys included) -> Lightning 2.

`normalize_trainer_kwargs` splits the options the training modules apply themselves (manual
optimization: `accumulate_grad_batches`, gradient clipping) from `Trainer` kwargs and
translates PL 1.x options (`gpus: "0,"`, `distributed_backend`); `make_strategy` builds DDP
variants with `find_unused_parameters=True` for GANs (each backward of the alternating updates
reaches one of the two networks), False for transformers.
"""

from __future__ import annotations

import logging
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["make_strategy", "normalize_trainer_kwargs"]


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
