"""Quantizers: nearest-code VQ (legacy beta), EMA codebook, Gumbel-softmax."""

from taming.quantize.base import QuantizeInfo, QuantizeOutput
from taming.quantize.ema import EMAVectorQuantizer
from taming.quantize.gumbel import GumbelQuantize
from taming.quantize.vq import VectorQuantizer

__all__ = [
    "EMAVectorQuantizer",
    "GumbelQuantize",
    "QuantizeInfo",
    "QuantizeOutput",
    "VectorQuantizer",
]
