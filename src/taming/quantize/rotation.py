"""The rotation trick: gradients through vector quantization by rotation and rescaling.

"Restructuring Vector Quantization with the Rotation Trick" (Fifty et al., ICLR 2025). Instead
of the straight-through estimator (`q_st = e + sg[q - e]`, which copies the gradient at q to
the encoder output e unchanged), the quantized vector is written as a linear map of e,

    q_rt = sg[lambda R] e,   lambda = ||q|| / ||e||,   R the rotation taking e/||e|| to q/||q||,

so the forward value is q while the backward pass sends `lambda R^T g` to e: the gradient is
rotated from the code's frame into the encoder output's frame, and its angle to e is kept.
R is the Householder form of the paper (Eq. 4), `R = I - 2 r r^T + 2 q_hat e_hat^T` with
`r = (e_hat + q_hat) / ||e_hat + q_hat||`, applied without building the D x D matrix.
"""

from __future__ import annotations

import torch

__all__ = ["rotation_trick"]


def rotation_trick(e: torch.Tensor, q: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """Rows e (N, D) (with gradient) and their codes q (N, D) -> q with the rotated gradient.

    The returned value equals q up to rounding; its gradient w.r.t. e is `lambda R^T g`.
    Rows with e = 0 get lambda = ||q|| / eps (no direction to rotate from).
    """
    e_norm = e.detach().norm(dim=-1, keepdim=True).clamp_min(eps)  # (N, 1)
    q = q.detach()
    q_norm = q.norm(dim=-1, keepdim=True).clamp_min(eps)
    e_hat = e.detach() / e_norm
    q_hat = q / q_norm
    r = e_hat + q_hat
    r = r / r.norm(dim=-1, keepdim=True).clamp_min(eps)  # (N, D), undefined only for q_hat = -e_hat
    lam = q_norm / e_norm
    # R e = e - 2 r (r . e) + 2 q_hat (e_hat . e), all factors except e detached
    re = (
        e
        - 2.0 * r * (r * e).sum(-1, keepdim=True)
        + 2.0 * q_hat * (e_hat * e).sum(-1, keepdim=True)
    )
    return lam * re
