"""What the demo stages share: their settings (`DemoContext`) and results (`StageResult`).

A stage is a function `stage(ctx) -> StageResult`; stages run in order and later stages read
earlier results from `ctx.results[name]` (see `taming.train.demo`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["DEMO_TRANSFORMER_STEPS", "DemoContext", "Stage", "StageResult"]

DEMO_TRANSFORMER_STEPS = 900


@dataclass
class StageResult:
    """Outputs of one demo stage: its folder, the files to show, and its metrics."""

    name: str
    out: Path
    files: dict[str, Path] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


@dataclass
class DemoContext:
    """Settings shared by the stages, and the results of the stages run so far."""

    out: Path
    steps: int = 1000
    size: int = 64
    batch_size: int = 4
    seed: int = 23
    perceptual: bool = False
    max_minutes: float | None = 6.0
    progress: bool = True
    transformer_steps: int | None = None
    transformer_max_minutes: float | None = 2.2
    results: dict[str, StageResult] = field(default_factory=dict)

    def transformer_step_count(self) -> int:
        """Transformer steps: as set, else `DEMO_TRANSFORMER_STEPS` scaled like `steps`."""
        if self.transformer_steps is not None:
            return self.transformer_steps
        return max(2, round(DEMO_TRANSFORMER_STEPS * self.steps / 1000))


Stage = Callable[[DemoContext], StageResult]
