"""Entropy penalty on the soft code assignments (codebook-usage regulariser).

MaskGIT (Chang et al., 2022, in its VQGAN tokenizer) and MAGVIT / MAGVIT-v2 (Yu et al., 2023,
"Language Model Beats Diffusion: Tokenizer is Key to Visual Generation", Eq. 5): with soft
assignments `q(c | z) = softmax(logits)` over the K codes,

    L_entropy = E_z[ H(q(. | z)) ] - gamma * H( E_z[ q(. | z) ] ),

low per-sample entropy makes each assignment confident, high entropy of the batch-average
distribution spreads the batch over the whole codebook. Entropies are exact (`log_softmax`,
`0 log 0 = 0`). Under DDP the batch average is the mean over all processes (an all-reduce
with autograd), so the penalty and its gradients equal those of one process holding the
whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taming.quantize.distributed import is_distributed

__all__ = ["batch_mean", "batch_mean_outer", "entropy", "entropy_penalty"]

_TINY = 1e-30  # p below this contributes p * log(1e-30) ~ 0 (float32 keeps it normal)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """-sum p log p over the last axis (0 log 0 = 0, with a finite gradient there)."""
    return -(p * torch.log(p.clamp_min(_TINY))).sum(dim=-1)


def batch_mean(p: torch.Tensor) -> torch.Tensor:
    """Mean of p (N, K) over the rows of all processes -> (K,), differentiable."""
    return _mean_over_all_rows(p.sum(dim=0), p.shape[0])


def batch_mean_outer(low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
    """Mean over the rows of all processes of the rows' outer products, flattened with `low`'s
    index the least significant: low (N, A), high (N, B) -> (B * A,), entry `b * A + a` the
    mean of `high[n, b] * low[n, a]`. One (B, N) @ (N, A) product instead of an (N, B * A)
    matrix."""
    return _mean_over_all_rows((high.t() @ low).flatten(), low.shape[0])


def _mean_over_all_rows(total: torch.Tensor, rows: int) -> torch.Tensor:
    n = torch.tensor(float(rows), device=total.device)
    if is_distributed():
        import torch.distributed.nn.functional as dist_fn

        total = dist_fn.all_reduce(total)
        n = dist_fn.all_reduce(n)
    return total / n


def entropy_penalty(logits: torch.Tensor, diversity_gamma: float = 1.0) -> torch.Tensor:
    """`mean_n H(softmax(logits_n)) - gamma * H(mean_n softmax(logits_n))` for logits (N, K)."""
    logp = F.log_softmax(logits.float(), dim=-1)
    p = logp.exp()
    per_sample = -(p * logp).sum(dim=-1).mean()
    return per_sample - diversity_gamma * entropy(batch_mean(p))
