"""Inception Score (Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016).

`IS = exp(E_x KL(p(y|x) || p(y)))` of the Inception-v3 class posteriors, computed per split
and reported as the mean and standard deviation over `splits` equal parts (torch-fidelity's
way, which the published numbers use): the logits `(N, 1008)` (torch-fidelity's
"logits_unbiased", the fc layer without its bias) are first shuffled with
`numpy.random.RandomState(seed).permutation(N)`, then split `i` takes rows
`[i * N // splits, (i + 1) * N // splits)`; softmax and KL are evaluated in float64.
"""

from __future__ import annotations

import numpy as np
import torch

__all__ = ["inception_score"]


def inception_score(
    logits: np.ndarray | torch.Tensor, splits: int = 10, seed: int = 2020, shuffle: bool = True
) -> tuple[float, float]:
    """`(mean, std)` of the Inception Score of logits `(N, C)` over `splits` parts."""
    x = torch.as_tensor(np.asarray(logits), dtype=torch.float64)
    if x.ndim != 2:
        raise ValueError(f"logits must be (N, C), got {tuple(x.shape)}")
    n = x.shape[0]
    if splits < 1 or n < splits:
        raise ValueError(f"IS with {splits} splits needs at least {splits} images, got {n}")
    if shuffle:
        x = x[torch.from_numpy(np.random.RandomState(seed).permutation(n))]
    log_p = torch.log_softmax(x, dim=1)  # (N, C)
    p = log_p.exp()
    scores = []
    for i in range(splits):
        lo, hi = i * n // splits, (i + 1) * n // splits
        p_i, log_p_i = p[lo:hi], log_p[lo:hi]
        log_q = torch.log(p_i.mean(0, keepdim=True))  # (1, C) marginal of the split
        kl = (p_i * (log_p_i - log_q)).sum(1)  # (n_i,)
        scores.append(float(kl.mean().exp()))
    return float(np.mean(scores)), float(np.std(scores))
