"""Second stage: the minGPT transformer, its static KV cache and the token permuters."""

from taming.transformer.gpt import (
    DROP_KEY_SUFFIXES,
    GPT,
    gpt_checkpoint_filter,
    legacy_attn_mask,
)
from taming.transformer.kv_cache import KVCache
from taming.transformer.permuter import (
    AlternateParsing,
    Identity,
    Random,
    SpiralIn,
    SpiralOut,
    Subsample,
    ZCurve,
)

__all__ = [
    "DROP_KEY_SUFFIXES",
    "GPT",
    "AlternateParsing",
    "Identity",
    "KVCache",
    "Random",
    "SpiralIn",
    "SpiralOut",
    "Subsample",
    "ZCurve",
    "gpt_checkpoint_filter",
    "legacy_attn_mask",
]
