"""Binary spherical quantization: lookup-free quantization on the unit sphere.

"Image and Video Tokenization with Binary Spherical Quantization" (Zhao, Xiong, Kraehenbuehl,
2024). The d-channel input is l2-normalised, then each channel is quantized to
`+-1 / sqrt(d)`, so codes lie on the unit sphere and the quantization error is bounded. Ids,
the entropy loss and the interface are `taming.quantize.lfq.LFQ`'s (vector-quantize-pytorch's
`LFQ(spherical=True)` convention); this class only fixes `spherical=True`.
"""

from __future__ import annotations

from taming.quantize.lfq import LFQ

__all__ = ["BSQ"]


class BSQ(LFQ):
    """`LFQ(..., spherical=True)`; same arguments otherwise."""

    def __init__(
        self,
        codebook_size: int,
        entropy_weight: float = 0.1,
        commitment_weight: float = 0.25,
        diversity_gamma: float = 1.0,
        entropy_temperature: float = 0.01,
        entropy_group_bits: int | None = None,
    ) -> None:
        super().__init__(
            codebook_size,
            entropy_weight=entropy_weight,
            commitment_weight=commitment_weight,
            diversity_gamma=diversity_gamma,
            entropy_temperature=entropy_temperature,
            entropy_group_bits=entropy_group_bits,
            spherical=True,
        )
