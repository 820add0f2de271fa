"""Token-level sampling from the second-stage GPT: filters, cached/CFG/completion samplers and
sliding-window sampling of grids larger than the training window."""

from taming.sampling.config import SamplingConfig
from taming.sampling.logits import (
    apply_temperature,
    filter_logits,
    top_k_logits,
    top_k_top_p_filtering,
    top_p_logits,
)
from taming.sampling.sample import (
    StepCallback,
    TokenSampler,
    complete_tokens,
    decode_positions,
    sample_tokens,
)
from taming.sampling.sliding import sample_sliding_window, window_start

__all__ = [
    "SamplingConfig",
    "StepCallback",
    "TokenSampler",
    "apply_temperature",
    "complete_tokens",
    "decode_positions",
    "filter_logits",
    "sample_sliding_window",
    "sample_tokens",
    "top_k_logits",
    "top_k_top_p_filtering",
    "top_p_logits",
    "window_start",
]
