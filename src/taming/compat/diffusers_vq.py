"""diffusers' `VQModel` (`config.json` + `diffusion_pytorch_model.safetensors`) -> taming.

diffusers re-arranged VQGAN into `down_blocks`/`up_blocks` of `resnets`, `attentions` (Linear
projections `to_q/to_k/to_v/to_out.0`, norm `group_norm`), `downsamplers.0`/`upsamplers.0` and
a `mid_block`; its decoder lists levels from the lowest resolution up, taming's `up.{i}` is
indexed by level. The key map renames, reverses the decoder levels and reshapes the attention
Linear weights (C, C) to 1x1 convolutions (C, C, 1, 1). Older diffusers files name the
attention `query/key/value/proj_attn`; both spellings are placed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from taming.compat.keymap import Converted, KeyMap, Rule, linear_to_conv1x1
from taming.config import ConfigError

__all__ = ["diffusers_config_to_taming", "diffusers_keymap", "convert_diffusers"]

_DOWN = ("DownEncoderBlock2D", "AttnDownEncoderBlock2D")
_UP = ("UpDecoderBlock2D", "AttnUpDecoderBlock2D")
# config entries that do not change the autoencoder's function
_IGNORED = (
    "_class_name",
    "_diffusers_version",
    "_name_or_path",
    "scaling_factor",
    "force_upcast",
    "lookup_from_codebook",
    "act_fn",
    "mid_block_add_attention",
    "norm_type",
    "norm_num_groups",
    "vq_embed_dim",
    "layers_per_block",
    "latent_channels",
    "num_vq_embeddings",
    "in_channels",
    "out_channels",
    "sample_size",
    "down_block_types",
    "up_block_types",
    "block_out_channels",
)


def diffusers_config_to_taming(cfg: Mapping[str, Any]) -> dict:
    """A diffusers `VQModel` config.json -> taming's `VQModel` config."""
    unknown = sorted(set(cfg) - set(_IGNORED))
    if unknown:
        raise ConfigError(f"diffusers VQModel config: unknown entries {', '.join(unknown)}")
    for key, ours in (
        ("act_fn", "silu"),
        ("norm_type", "group"),
        ("norm_num_groups", 32),
        ("mid_block_add_attention", True),
    ):
        if cfg.get(key, ours) != ours:
            raise ConfigError(f"diffusers VQModel: {key}={cfg[key]!r} is not supported ({ours!r})")
    chans = list(cfg.get("block_out_channels", [64]))
    down = list(cfg.get("down_block_types", ["DownEncoderBlock2D"]))
    up = list(cfg.get("up_block_types", ["UpDecoderBlock2D"]))
    if any(t not in _DOWN for t in down) or any(t not in _UP for t in up):
        raise ConfigError(f"diffusers VQModel: unsupported block types {down} / {up}")
    if not (len(chans) == len(down) == len(up)):
        raise ConfigError(
            "diffusers VQModel: block_out_channels, down/up_block_types differ in length"
        )
    ch = chans[0]
    if any(c % ch for c in chans):
        raise ConfigError(f"block_out_channels {chans}: not multiples of the first")
    resolution = int(cfg.get("sample_size", 32))
    attn_down = [resolution // 2**i for i, t in enumerate(down) if t.startswith("Attn")]
    attn_up = [resolution // 2**i for i, t in enumerate(reversed(up)) if t.startswith("Attn")]
    if attn_down != attn_up:
        raise ConfigError("diffusers VQModel: encoder and decoder attention levels differ")
    latent = int(cfg.get("latent_channels", 3))
    ddconfig = {
        "double_z": False,
        "z_channels": latent,
        "resolution": resolution,
        "in_channels": int(cfg.get("in_channels", 3)),
        "out_ch": int(cfg.get("out_channels", 3)),
        "ch": ch,
        "ch_mult": [c // ch for c in chans],
        "num_res_blocks": int(cfg.get("layers_per_block", 1)),
        "attn_resolutions": attn_down,
        "dropout": 0.0,
    }
    params = {
        "ddconfig": ddconfig,
        "lossconfig": None,
        "n_embed": int(cfg.get("num_vq_embeddings", 256)),
        "embed_dim": int(cfg.get("vq_embed_dim") or latent),
    }
    return {"target": "taming.models.vqgan.VQModel", "params": params}


def diffusers_keymap(num_levels: int) -> KeyMap:
    """The key map for a VQModel with `num_levels` resolution levels."""
    last = num_levels - 1
    resnet = r"(norm1|conv1|norm2|conv2)\.(weight|bias)"
    attn = {
        "group_norm": "norm",
        "to_q": "q",
        "to_k": "k",
        "to_v": "v",
        "to_out\\.0": "proj_out",
        "query": "q",
        "key": "k",
        "value": "v",
        "proj_attn": "proj_out",
    }

    def up_level(m) -> str:  # diffusers' up_blocks.k is taming's level last - k
        return str(last - int(m.group(1)))

    rules: list[Rule] = []
    for part, lv_src, lv_dst in (
        ("encoder", r"down_blocks\.(\d+)", lambda m: m.group(1)),
        ("decoder", r"up_blocks\.(\d+)", up_level),
    ):
        blk = "down" if part == "encoder" else "up"
        sampler = "downsamplers" if part == "encoder" else "upsamplers"
        sampled = "downsample" if part == "encoder" else "upsample"

        def res(m, part=part, blk=blk, lv_dst=lv_dst):
            return f"{part}.{blk}.{lv_dst(m)}.block.{m.group(2)}.{m.group(3)}.{m.group(4)}"

        def short(m, part=part, blk=blk, lv_dst=lv_dst):
            return f"{part}.{blk}.{lv_dst(m)}.block.{m.group(2)}.nin_shortcut.{m.group(3)}"

        def samp(m, part=part, blk=blk, lv_dst=lv_dst, sampled=sampled):
            return f"{part}.{blk}.{lv_dst(m)}.{sampled}.conv.{m.group(2)}"

        rules += [
            Rule(rf"{part}\.{lv_src}\.resnets\.(\d+)\.{resnet}", res),
            Rule(rf"{part}\.{lv_src}\.resnets\.(\d+)\.conv_shortcut\.(weight|bias)", short),
            Rule(rf"{part}\.{lv_src}\.{sampler}\.0\.conv\.(weight|bias)", samp),
        ]
        for src, dst in attn.items():

            def at(m, part=part, blk=blk, lv_dst=lv_dst, dst=dst):
                return f"{part}.{blk}.{lv_dst(m)}.attn.{m.group(2)}.{dst}.{m.group(3)}"

            rules += [
                Rule(
                    rf"{part}\.{lv_src}\.attentions\.(\d+)\.{src}\.(weight|bias)",
                    at,
                    None if dst == "norm" else linear_to_conv1x1,
                ),
                Rule(
                    rf"{part}\.mid_block\.attentions\.0\.{src}\.(weight|bias)",
                    rf"{part}.mid.attn_1.{dst}.\1",
                    None if dst == "norm" else linear_to_conv1x1,
                ),
            ]
        rules += [
            Rule(rf"{part}\.mid_block\.resnets\.0\.{resnet}", rf"{part}.mid.block_1.\1.\2"),
            Rule(rf"{part}\.mid_block\.resnets\.1\.{resnet}", rf"{part}.mid.block_2.\1.\2"),
            Rule(
                rf"{part}\.mid_block\.resnets\.([01])\.conv_shortcut\.(weight|bias)",
                lambda m, part=part: (
                    f"{part}.mid.block_{int(m.group(1)) + 1}.nin_shortcut.{m.group(2)}"
                ),
            ),
            Rule(rf"{part}\.conv_norm_out\.(weight|bias)", rf"{part}.norm_out.\1"),
            Rule(rf"{part}\.(conv_in|conv_out)\.(weight|bias)", rf"{part}.\1.\2"),
        ]
    rules += [
        Rule(r"(quant_conv|post_quant_conv)\.(weight|bias)", r"\1.\2"),
        Rule(r"quantize\.embedding\.weight", "quantize.embedding.weight"),
    ]
    return KeyMap(rules, name="diffusers")


def convert_diffusers(
    cfg: Mapping[str, Any], state_dict: Mapping[str, torch.Tensor], source: str
) -> Converted:
    """Config and state dict of a diffusers VQModel in taming's layout."""
    config = diffusers_config_to_taming(cfg)
    levels = len(config["params"]["ddconfig"]["ch_mult"])
    sd, report = diffusers_keymap(levels).apply(state_dict, source=source)
    return Converted(config, sd, report)
