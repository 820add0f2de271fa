"""Placeholder loss for frozen stages.

The original "Taming Transformers" (Esser et al., 2021) configs give frozen first/cond stages
`lossconfig: taming.modules.losses.DummyLoss`; it has no parameters and is never called, so a
checkpoint's `loss.*` keys are simply not part of such a model.
"""

from __future__ import annotations

from torch import nn

__all__ = ["DummyLoss"]


class DummyLoss(nn.Module):
    """An empty module (no parameters, no forward)."""
