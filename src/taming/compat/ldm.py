"""latent-diffusion's `ldm.models.autoencoder.VQModel` (the `vq-f8`, `vq-f8-n256` autoencoders).

"High-Resolution Image Synthesis with Latent Diffusion Models" (Rombach et al., CVPR 2022)
kept VQGAN's module names: its Encoder/Decoder/quantizer keys are taming's, so the key map is
the identity on the autoencoder plus dropped training-only entries (`loss.*`, the EMA copy
`model_ema.*`). Its config differs in a few constructor arguments (`batch_resize_range`,
`scheduler_config`, `lr_g_factor`, `use_ema`: training only) and in `ddconfig` extras
(`attn_type`, `use_linear_attn`, `tanh_out`), accepted when they mean taming's behaviour.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from taming.compat.keymap import Converted, KeyMap, Rule
from taming.config import ConfigError

__all__ = ["LDM_KEYMAP", "convert_ldm", "ldm_config_to_taming"]

LDM_TARGETS = ("ldm.models.autoencoder.VQModel", "ldm.models.autoencoder.VQModelInterface")

# constructor arguments of ldm's VQModel that only training uses
_TRAINING_ONLY = ("batch_resize_range", "scheduler_config", "lr_g_factor", "use_ema", "ckpt_path")
_KEPT = (
    "ddconfig",
    "n_embed",
    "embed_dim",
    "image_key",
    "colorize_nlabels",
    "monitor",
    "remap",
    "sane_index_shape",
    "ignore_keys",
    "lossconfig",
)
# ddconfig extras of ldm's Encoder/Decoder and the value that is taming's behaviour
_DD_EXTRAS = {"attn_type": "vanilla", "use_linear_attn": False, "tanh_out": False}

LDM_KEYMAP = KeyMap(
    [Rule(r"((?:encoder|decoder|quant_conv|post_quant_conv|quantize)\..+)", r"\1")],
    drop=[r"loss\..+", r"model_ema\..+"],
    name="latent-diffusion",
)


def ldm_config_to_taming(model_cfg: Mapping[str, Any]) -> dict:
    """latent-diffusion `{target, params}` of a VQModel -> taming's `VQModel` config."""
    target = model_cfg.get("target")
    if target not in LDM_TARGETS:
        raise ConfigError(f"not a latent-diffusion VQModel config (target {target!r})")
    params = dict(model_cfg.get("params") or {})
    unknown = sorted(set(params) - set(_TRAINING_ONLY) - set(_KEPT))
    if unknown:
        raise ConfigError(f"latent-diffusion VQModel: unknown params {', '.join(unknown)}")
    dd = dict(params["ddconfig"])
    for key, ours in _DD_EXTRAS.items():
        if key in dd:
            if dd.pop(key) != ours:
                raise ConfigError(f"ddconfig.{key}: only {ours!r} is supported")
    out = {k: params[k] for k in _KEPT if k in params and k not in ("ignore_keys", "lossconfig")}
    out["ddconfig"] = dd
    out["lossconfig"] = None  # ldm's released configs name `torch.nn.Identity`: no loss
    return {"target": "taming.models.vqgan.VQModel", "params": out}


def convert_ldm(
    model_cfg: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], source: str
) -> Converted:
    """Config and state dict of a latent-diffusion VQModel in taming's layout."""
    config = ldm_config_to_taming(model_cfg)
    sd, report = LDM_KEYMAP.apply(state_dict, source=source)
    return Converted(config, sd, report)
