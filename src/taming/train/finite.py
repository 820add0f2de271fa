"""The finite-loss guard: stop (or skip) at the step a loss or gradient goes NaN/Inf.

An exploding learning rate or a bad batch turns the losses `nan`; without a guard the run
trains on to the end and the periodic `last.ckpt` is replaced by a checkpoint of non-finite
weights. Here:

- `FiniteGuard.check` looks at every loss term of a batch (and, before an optimizer step, the
  gradient norm) in one device synchronisation. By default the first non-finite value stops
  the run with `NonFiniteLossError`, one line naming the step and the terms that went
  non-finite, before the optimizer applies anything. With `max_skips=N` the batch's gradients
  are dropped instead, counted, and the run stops once more than N batches were skipped.
- `all_finite` is what `AtomicCheckpointIO` asks before writing: a checkpoint whose weights or
  optimizer moments are not finite is never written (over `last.ckpt`, the periodic or the best
  checkpoints alike).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from typing import Any

import torch

logger = logging.getLogger(__name__)

__all__ = ["FiniteGuard", "NonFiniteLossError", "all_finite", "nonfinite_names"]


class NonFiniteLossError(RuntimeError):
    """Training stopped: a loss term or gradient norm became NaN or infinite."""


def _as_tensor(value: Any) -> torch.Tensor:
    if isinstance(value, torch.Tensor):
        return value.detach().float().reshape(-1)
    return torch.tensor([float(value)])


def nonfinite_names(terms: Mapping[str, Any]) -> list[str]:
    """`["name=nan", ...]` for the terms (tensors or numbers) that hold a NaN or Inf."""
    if not terms:
        return []
    values = [_as_tensor(v) for v in terms.values()]
    device = values[0].device
    flags = torch.stack([torch.isfinite(v.to(device)).all() for v in values])
    if bool(flags.all()):  # the one synchronisation of the common case
        return []
    bad = []
    for (name, v), ok in zip(terms.items(), flags.tolist(), strict=True):
        if not ok:
            v = _as_tensor(v)
            first = v[~torch.isfinite(v)][0].item()
            bad.append(f"{name}={first}")
    return bad


def grad_norm(params: Iterable[torch.Tensor]) -> torch.Tensor | None:
    """The 2-norm of all gradients (None when there are none)."""
    grads = [p.grad.detach() for p in params if p.grad is not None]
    if not grads:
        return None
    norms = torch._foreach_norm(grads) if hasattr(torch, "_foreach_norm") else None
    if norms is None:  # pragma: no cover - very old torch
        norms = [torch.linalg.vector_norm(g) for g in grads]
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def all_finite(tree: Any) -> bool:
    """True if every floating-point tensor in a (nested) checkpoint dict is finite."""
    flags: list[torch.Tensor] = []

    def visit(node: Any) -> None:
        if isinstance(node, torch.Tensor):
            if node.is_floating_point() or node.is_complex():
                flags.append(torch.isfinite(node).all())
        elif isinstance(node, Mapping):
            for v in node.values():
                visit(v)
        elif isinstance(node, list | tuple):
            for v in node:
                visit(v)
        elif isinstance(node, float) and not math.isfinite(node):
            flags.append(torch.tensor(False))

    visit(tree)
    return bool(torch.stack([f.cpu() for f in flags]).all()) if flags else True


class FiniteGuard:
    """Stops (default) or skips batches whose losses or gradient norm are not finite.

    Args:
        max_skips: 0: stop at the first non-finite value; N > 0: drop such batches (their
            gradients are zeroed, nothing is applied) and stop when more than N were dropped.
    """

    def __init__(self, max_skips: int = 0) -> None:
        if max_skips < 0:
            raise ValueError(f"max_skips must be >= 0, got {max_skips}")
        self.max_skips = int(max_skips)
        self.skipped = 0

    def check(self, step: int, terms: Mapping[str, Any]) -> bool:
        """True if every term is finite. Otherwise raise, or count a skip and return False."""
        bad = nonfinite_names(terms)
        if not bad:
            return True
        where = f"non-finite loss at generator step {step}: {', '.join(bad)}"
        if self.max_skips == 0:
            raise NonFiniteLossError(
                f"{where}; training stopped, no checkpoint was written from this state (lower "
                "the learning rate, or skip such batches with --skip-nonfinite N)"
            )
        self.skipped += 1
        if self.skipped > self.max_skips:
            raise NonFiniteLossError(
                f"{where}; more than {self.max_skips} non-finite batches were skipped, "
                "training stopped"
            )
        logger.warning("%s; batch skipped (%d of at most %d)", where, self.skipped, self.max_skips)
        return False
