"""Declarative state-dict key maps for converting other libraries' checkpoints.

In the manner of torchtitan's state-dict adapters: a converter is a list of rules, each a
regular expression over a source key (matched in full) with a replacement template and an
optional small reshape, plus patterns of keys that are dropped on purpose. Applying a map to a
state dict gives the converted dict and a report (mapped, dropped); a source key that no rule
places and no drop pattern names is an error, never a silent drop.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import torch

from taming.compat.checkpoint import CheckpointError

__all__ = ["ConversionReport", "Converted", "KeyMap", "Rule", "linear_to_conv1x1"]

Reshape = Callable[[torch.Tensor], torch.Tensor]


def linear_to_conv1x1(t: torch.Tensor) -> torch.Tensor:
    """A Linear weight (out, in) as a 1x1 convolution weight (out, in, 1, 1); biases unchanged."""
    return t[:, :, None, None] if t.ndim == 2 else t


@dataclass(frozen=True)
class Rule:
    """`pattern` (full match) -> `target` (a `re` template, or a function of the match)."""

    pattern: str
    target: str | Callable[[re.Match], str]
    reshape: Reshape | None = None

    def apply(self, key: str) -> str | None:
        m = re.fullmatch(self.pattern, key)
        if m is None:
            return None
        return self.target(m) if callable(self.target) else m.expand(self.target)


@dataclass
class ConversionReport:
    """What a conversion did with each key (for the CLI's summary)."""

    mapped: list[tuple[str, str]] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def summary(self) -> str:
        renamed = sum(1 for s, d in self.mapped if s != d)
        lines = [f"mapped {len(self.mapped)} keys ({renamed} renamed)"]
        lines.append(f"dropped {len(self.dropped)} keys" + _listing(self.dropped))
        lines.append(f"missing {len(self.missing)} keys" + _listing(self.missing))
        return "\n".join(lines)


def _listing(keys: Sequence[str], n: int = 8) -> str:
    if not keys:
        return ""
    more = f", ... (+{len(keys) - n})" if len(keys) > n else ""
    return ": " + ", ".join(keys[:n]) + more


class KeyMap:
    """Ordered rules (first match wins) and drop patterns (full-match regexes)."""

    def __init__(self, rules: Sequence[Rule], drop: Sequence[str] = (), name: str = "") -> None:
        self.rules = list(rules)
        self.drop = [re.compile(p) for p in drop]
        self.name = name

    def target_of(self, key: str) -> tuple[str, Reshape | None] | None:
        for rule in self.rules:
            new = rule.apply(key)
            if new is not None:
                return new, rule.reshape
        return None

    def apply(
        self, state_dict: Mapping[str, torch.Tensor], source: str = "checkpoint"
    ) -> tuple[dict[str, torch.Tensor], ConversionReport]:
        """Converted state dict and report; raises `CheckpointError` on an unplaceable key or
        on two source keys mapped to one target."""
        out: dict[str, torch.Tensor] = {}
        report = ConversionReport()
        unplaced: list[str] = []
        for key, value in state_dict.items():
            if any(p.fullmatch(key) for p in self.drop):
                report.dropped.append(key)
                continue
            found = self.target_of(key)
            if found is None:
                unplaced.append(key)
                continue
            new, reshape = found
            if new in out:
                raise CheckpointError(f"{source}: two keys map to '{new}' ({self.name} key map)")
            out[new] = reshape(value) if reshape is not None else value
            report.mapped.append((key, new))
        if unplaced:
            raise CheckpointError(
                f"{source}: {len(unplaced)} keys the {self.name or 'key'} map cannot place"
                + _listing(unplaced)
            )
        return out, report


@dataclass
class Converted:
    """A converter's result: a `{target, params}` model config and its state dict."""

    config: dict
    state_dict: dict[str, torch.Tensor]
    report: ConversionReport
