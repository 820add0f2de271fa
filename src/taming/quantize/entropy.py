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

__all__ = ["batch_mean", "entropy", "entropy_penalty"]

_TINY = 1e-30  # p below this contributes p * log(1e-30) ~ 0 (float32 keeps it normal)


def entropy(p: torch.Tensor) -> torch.Tensor:
    """-sum p log p over the last axis (0 log 0 = 0, with a finite gradient there)."""
    return -(p * torch.log(p.clamp_min(_TINY))).sum(dim=-1)


def batch_mean(p: torch.Tensor) -> torch.Tensor:
    """Mean of p (N, K) over the rows of all processes -> (K,), differentiable."""
    total = p.sum(dim=0)
    n = torch.tensor(float(p.shape[0]), device=p.device)
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
