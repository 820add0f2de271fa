"""Quantizers: nearest-code VQ (legacy beta), EMA codebook, Gumbel-softmax, the improved VQ
(l2/factorised codes, k-means, restarts, EMA, entropy penalty, rotation trick), FSQ, LFQ, BSQ.

Every quantizer maps z (B, D, H, W) to `QuantizeOutput(quant, loss, info)`, with the code ids
in `info.indices`, and ids back to codes with `get_codebook_entry(ids, shape=(B, H, W, D))`
-> (B, D, H, W); `vocab_size` is the number of ids.
"""

from taming.quantize.base import QuantizeInfo, QuantizeOutput
from taming.quantize.bsq import BSQ
from taming.quantize.ema import EMAVectorQuantizer
from taming.quantize.fsq import FSQ
from taming.quantize.gumbel import GumbelQuantize
from taming.quantize.improved_vq import ImprovedVectorQuantizer
from taming.quantize.lfq import LFQ
from taming.quantize.vq import VectorQuantizer

__all__ = [
    "BSQ",
    "FSQ",
    "LFQ",
    "EMAVectorQuantizer",
    "GumbelQuantize",
    "ImprovedVectorQuantizer",
    "QuantizeInfo",
    "QuantizeOutput",
    "VectorQuantizer",
]
