"""LlamaGen's VQ tokenizers (`tokenizer/tokenizer_image/vq_model.py`, `VQ_8` / `VQ_16`).

"Autoregressive Model Beats Diffusion: Llama for Scalable Image Generation" (Sun et al., 2024).
The autoencoder is VQGAN's with attention only at the lowest resolution (encoder and decoder),
a 16384-code, 8-dimensional, l2-normalised codebook, and its own module names:
`conv_blocks.{i}.res/attn/downsample` for taming's `down.{i}.block/attn/downsample`, the
decoder's `conv_blocks` listed from the lowest resolution up, and `mid.0/1/2` for
`mid.block_1/attn_1/block_2`. The quantizer is taming's `ImprovedVectorQuantizer` with
`l2_norm=True` (its `embedding.weight` is LlamaGen's); the usage statistic
`quantize.codebook_used` is dropped.

`ModelArgs` fields (defaults of the `--arch`, overridable as `key=value`): `codebook_size`,
`codebook_embed_dim`, `codebook_l2_norm`, `codebook_show_usage`, `commit_loss_beta`,
`entropy_loss_ratio`, `encoder_ch_mult`, `decoder_ch_mult`, `z_channels`, `dropout_p`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import yaml

from taming.compat.keymap import Converted, KeyMap, Rule
from taming.config import ConfigError

__all__ = ["LLAMAGEN_ARCHS", "convert_llamagen", "llamagen_args", "llamagen_config"]

_DEFAULTS: dict[str, Any] = {
    "codebook_size": 16384,
    "codebook_embed_dim": 8,
    "codebook_l2_norm": True,
    "codebook_show_usage": True,
    "commit_loss_beta": 0.25,
    "entropy_loss_ratio": 0.0,
    "encoder_ch_mult": [1, 1, 2, 2, 4],
    "decoder_ch_mult": [1, 1, 2, 2, 4],
    "z_channels": 256,
    "dropout_p": 0.0,
}
LLAMAGEN_ARCHS: dict[str, dict[str, Any]] = {
    "VQ-8": {"encoder_ch_mult": [1, 2, 2, 4], "decoder_ch_mult": [1, 2, 2, 4]},
    "VQ-16": {"encoder_ch_mult": [1, 1, 2, 2, 4], "decoder_ch_mult": [1, 1, 2, 2, 4]},
}
_NOMINAL_RESOLUTION = 256  # only decides where attention sits: the lowest level


def parse_overrides(items: Sequence[str]) -> dict[str, Any]:
    """`key=value` strings -> dict; values are YAML (`16384`, `true`, `[1,2,2,4]`)."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"expected key=value, got {item!r}")
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ConfigError(
                f"{item}: cannot parse the value ({str(e).splitlines()[0]})"
            ) from None
    return out


def llamagen_args(arch: str | None, overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The ModelArgs of `arch` (VQ-8 / VQ-16; None: VQ-16) with `overrides` applied."""
    name = (arch or "VQ-16").upper().replace("_", "-")
    if name not in LLAMAGEN_ARCHS:
        raise ConfigError(f"--arch {arch}: LlamaGen knows {', '.join(LLAMAGEN_ARCHS)}")
    args = {**_DEFAULTS, **LLAMAGEN_ARCHS[name]}
    unknown = sorted(set(overrides or {}) - set(_DEFAULTS))
    if unknown:
        raise ConfigError(
            f"unknown LlamaGen ModelArgs {', '.join(unknown)} (known: {', '.join(_DEFAULTS)})"
        )
    args.update(overrides or {})
    return args


def llamagen_config(args: Mapping[str, Any]) -> dict:
    """LlamaGen ModelArgs -> taming's `VQModel` config with an l2 `ImprovedVectorQuantizer`."""
    if list(args["encoder_ch_mult"]) != list(args["decoder_ch_mult"]):
        raise ConfigError("LlamaGen: encoder_ch_mult and decoder_ch_mult must be equal here")
    ch_mult = list(args["encoder_ch_mult"])
    ddconfig = {
        "double_z": False,
        "z_channels": int(args["z_channels"]),
        "resolution": _NOMINAL_RESOLUTION,
        "in_channels": 3,
        "out_ch": 3,
        "ch": 128,
        "ch_mult": ch_mult,
        "num_res_blocks": 2,
        "attn_resolutions": [_NOMINAL_RESOLUTION // 2 ** (len(ch_mult) - 1)],
        "dropout": float(args["dropout_p"]),
    }
    quantizer = {
        "target": "taming.quantize.improved_vq.ImprovedVectorQuantizer",
        "params": {
            "n_e": int(args["codebook_size"]),
            "e_dim": int(args["codebook_embed_dim"]),
            "l2_norm": bool(args["codebook_l2_norm"]),
            "beta": float(args["commit_loss_beta"]),
            "entropy_weight": float(args["entropy_loss_ratio"]),
        },
    }
    params = {"ddconfig": ddconfig, "lossconfig": None, "quantizer_config": quantizer}
    return {"target": "taming.models.vqgan.VQModel", "params": params}


def llamagen_keymap(num_levels: int) -> KeyMap:
    last = num_levels - 1
    mid = {"0": "block_1", "1": "attn_1", "2": "block_2"}
    return KeyMap(
        [
            Rule(r"encoder\.conv_blocks\.(\d+)\.res\.(.+)", r"encoder.down.\1.block.\2"),
            Rule(r"encoder\.conv_blocks\.(\d+)\.(attn|downsample)\.(.+)", r"encoder.down.\1.\2.\3"),
            Rule(
                r"decoder\.conv_blocks\.(\d+)\.res\.(.+)",
                lambda m: f"decoder.up.{last - int(m.group(1))}.block.{m.group(2)}",
            ),
            Rule(
                r"decoder\.conv_blocks\.(\d+)\.(attn|upsample)\.(.+)",
                lambda m: f"decoder.up.{last - int(m.group(1))}.{m.group(2)}.{m.group(3)}",
            ),
            Rule(
                r"(encoder|decoder)\.mid\.([012])\.(.+)",
                lambda m: f"{m.group(1)}.mid.{mid[m.group(2)]}.{m.group(3)}",
            ),
            Rule(r"((?:encoder|decoder)\.(?:conv_in|norm_out|conv_out)\.(?:weight|bias))", r"\1"),
            Rule(r"((?:quant_conv|post_quant_conv)\.(?:weight|bias))", r"\1"),
            Rule(r"quantize\.embedding\.weight", "quantize.embedding.weight"),
        ],
        drop=[r"quantize\.codebook_used"],
        name="LlamaGen",
    )


def llamagen_state_dict(content: Mapping[str, Any], source: str) -> dict[str, torch.Tensor]:
    """The model state dict of a LlamaGen checkpoint (`model`, else `ema`, else bare)."""
    for key in ("model", "ema", "state_dict"):
        if isinstance(content.get(key), Mapping):
            return dict(content[key])
    if content and all(isinstance(v, torch.Tensor) for v in content.values()):
        return dict(content)
    raise ConfigError(f"{source}: no 'model' state dict (keys: {', '.join(map(str, content))})")


def convert_llamagen(
    state_dict: Mapping[str, torch.Tensor],
    arch: str | None,
    overrides: Mapping[str, Any] | None,
    source: str,
) -> Converted:
    """Config and state dict of a LlamaGen VQ tokenizer in taming's layout.

    Without `--arch`, the level count of the checkpoint picks VQ-8 (4) or VQ-16 (5).
    """
    if arch is None:
        levels = {int(k.split(".")[2]) for k in state_dict if k.startswith("encoder.conv_blocks.")}
        arch = {4: "VQ-8", 5: "VQ-16"}.get(len(levels), "VQ-16")
    args = llamagen_args(arch, overrides)
    config = llamagen_config(args)
    sd, report = llamagen_keymap(len(args["encoder_ch_mult"])).apply(state_dict, source=source)
    return Converted(config, sd, report)
