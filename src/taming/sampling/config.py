"""`SamplingConfig`: the one frozen bundle of decoding settings every sampler takes.

In the manner of Hugging Face's `GenerationConfig`: temperature, top-k, nucleus (top-p,
Holtzman et al. 2020), multinomial or greedy draws, classifier-free guidance (Ho & Salimans
2022) and the KV cache travel together, checked once, instead of as the same keyword list in
every signature. Samplers accept `config=` plus keyword overrides of single fields
(`sample_tokens(gpt, c, 256, top_k=100)` is `config=SamplingConfig(top_k=100)`).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

__all__ = ["SamplingConfig", "resolve_config"]


@dataclass(frozen=True)
class SamplingConfig:
    """Decoding settings.

    Args:
        temperature: Logit divisor, finite and > 0.
        top_k: Keep the `top_k` largest logits (ties survive); `None` or 0: all.
        top_p: Nucleus threshold in (0, 1] (transformers 4.3.1 semantics); `None`: off.
        sample: Multinomial draws; `False` takes the most likely token.
        cfg_scale: Classifier-free guidance scale, finite (1: off).
        use_cache: KV-cached decoding; `False` recomputes the prefix every step (original).
    """

    temperature: float = 1.0
    top_k: int | None = None
    top_p: float | None = None
    sample: bool = True
    cfg_scale: float = 1.0
    use_cache: bool = True

    def __post_init__(self) -> None:
        t = float(self.temperature)
        if not (math.isfinite(t) and t > 0):
            raise ValueError(f"temperature must be a finite number > 0, got {self.temperature}")
        if self.top_k is not None and (int(self.top_k) != self.top_k or self.top_k < 0):
            raise ValueError(f"top_k must be an integer >= 0 (0: off), got {self.top_k}")
        if self.top_p is not None and not (0.0 < float(self.top_p) <= 1.0):
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if not math.isfinite(float(self.cfg_scale)):
            raise ValueError(f"cfg_scale must be a finite number, got {self.cfg_scale}")
        object.__setattr__(self, "temperature", t)
        object.__setattr__(self, "top_k", int(self.top_k) if self.top_k else None)
        object.__setattr__(self, "cfg_scale", float(self.cfg_scale))

    @property
    def guided(self) -> bool:
        """Whether an unconditional pass runs (`cfg_scale != 1`)."""
        return self.cfg_scale != 1.0

    def replace(self, **changes: Any) -> SamplingConfig:
        """A copy with some fields changed (checked again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


_FIELDS = frozenset(f.name for f in dataclasses.fields(SamplingConfig))


def resolve_config(config: SamplingConfig | None, settings: dict[str, Any]) -> SamplingConfig:
    """`config` (default: `SamplingConfig()`) with the keyword `settings` applied; an unknown
    keyword is a `TypeError` naming it, as for a misspelt argument."""
    unknown = sorted(set(settings) - _FIELDS)
    if unknown:
        raise TypeError(
            f"unknown sampling setting {unknown[0]!r} (SamplingConfig has {sorted(_FIELDS)})"
        )
    config = config if config is not None else SamplingConfig()
    return config.replace(**settings) if settings else config
