"""Step schedules (used for the Gumbel-softmax temperature of `GumbelVQ`).

`LambdaWarmUpCosineScheduler`: linear warm-up from `lr_start` to `lr_max` over
`warm_up_steps`, then a half cosine from `lr_max` to `lr_min` over the remaining
`max_decay_steps - warm_up_steps` steps, constant afterwards (SGDR-style cosine annealing,
Loshchilov & Hutter 2017). Values match the original `taming.lr_scheduler`.
"""

from __future__ import annotations

import logging
import math

logger = logging.getLogger(__name__)

__all__ = ["LambdaWarmUpCosineScheduler"]


class LambdaWarmUpCosineScheduler:
    """Callable `n -> value` (use as a LambdaLR multiplier or a temperature schedule).

    Args:
        warm_up_steps: steps of linear warm-up.
        lr_min: final value.
        lr_max: value after warm-up.
        lr_start: value at step 0.
        max_decay_steps: step at which the cosine reaches `lr_min`.
        verbosity_interval: log the value every this many calls (0: never).
    """

    def __init__(
        self,
        warm_up_steps: int,
        lr_min: float,
        lr_max: float,
        lr_start: float,
        max_decay_steps: int,
        verbosity_interval: int = 0,
    ) -> None:
        self.lr_warm_up_steps = warm_up_steps
        self.lr_start = lr_start
        self.lr_min = lr_min
        self.lr_max = lr_max
        self.lr_max_decay_steps = max_decay_steps
        self.last_lr = 0.0
        self.verbosity_interval = verbosity_interval

    def schedule(self, n: int) -> float:
        if self.verbosity_interval > 0 and n % self.verbosity_interval == 0:
            logger.info("current step: %d, recent value: %s", n, self.last_lr)
        if n < self.lr_warm_up_steps:
            lr = (self.lr_max - self.lr_start) / self.lr_warm_up_steps * n + self.lr_start
        else:
            t = (n - self.lr_warm_up_steps) / (self.lr_max_decay_steps - self.lr_warm_up_steps)
            t = min(t, 1.0)
            lr = self.lr_min + 0.5 * (self.lr_max - self.lr_min) * (1 + math.cos(t * math.pi))
        self.last_lr = lr
        return lr

    def __call__(self, n: int) -> float:
        return self.schedule(n)
