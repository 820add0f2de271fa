"""Inference-only convolution without per-call weight layout conversion.

With channels-last activations (what VQModel uses when no gradients are tracked), a
convolution whose weight is stored NCHW first copies the weight to channels-last on every
call (an `aten::clone` per convolution, one more pass over small tensors between the real
work; most of it at the 8x8 and 16x16 levels, where a convolution costs little). Here the
channels-last copy of each weight is kept beside the module (a plain attribute: not in the
state dict, names and shapes unchanged) and reused until the weight changes (its version
counter, storage, dtype or device differ, e.g. after an optimizer step or `load_state_dict`).

With autograd, under `torch.compile`, or for NCHW input the module's own forward runs, so
training keeps the original's NCHW arithmetic.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["conv_forward"]

_CL = torch.channels_last


def _weight_cl(conv: nn.Conv2d) -> torch.Tensor:
    w = conv.weight
    key = (w.data_ptr(), w._version, w.dtype, w.device, tuple(w.shape))
    cached = getattr(conv, "_weight_cl_cache", None)
    if cached is None or cached[0] != key:
        cached = (key, w.detach().contiguous(memory_format=_CL))
        conv._weight_cl_cache = cached
    return cached[1]


def conv_forward(conv: nn.Conv2d, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)`; for channels-last inference with a cached channels-last weight."""
    if (
        torch.is_grad_enabled()
        or x.ndim != 4
        or conv.padding_mode != "zeros"
        or not x.is_contiguous(memory_format=_CL)
        or conv.weight.is_contiguous(memory_format=_CL)
        or torch.compiler.is_compiling()
    ):
        return conv(x)
    return F.conv2d(
        x, _weight_cl(conv), conv.bias, conv.stride, conv.padding, conv.dilation, conv.groups
    )
