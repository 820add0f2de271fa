"""Collective helpers that keep codebook updates identical on every process.

Codebook statistics (EMA counts and sums, dead-code counters, k-means data) are reduced over
all processes of the default `torch.distributed` group, and random choices are made on rank 0
and broadcast, so that N processes holding 1/N of a batch each end with the same codebook as
one process holding the whole batch (in rank order). Without an initialised process group
every helper is the identity.
"""

from __future__ import annotations

import torch
import torch.distributed as dist

__all__ = ["all_gather_rows", "all_reduce_sum", "broadcast", "is_distributed", "world_size"]


def is_distributed() -> bool:
    """True inside an initialised process group with more than one process."""
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def all_reduce_sum(t: torch.Tensor) -> torch.Tensor:
    """Sum of `t` over all processes (in place, returned); no gradient."""
    if is_distributed():
        dist.all_reduce(t)
    return t


def broadcast(t: torch.Tensor, src: int = 0) -> torch.Tensor:
    """`t` of process `src` on every process (in place, returned)."""
    if is_distributed():
        dist.broadcast(t, src)
    return t


def all_gather_rows(x: torch.Tensor) -> torch.Tensor:
    """Concatenate the rows of x (N_r, D) of all processes in rank order -> (sum N_r, D).

    Processes may hold different numbers of rows (a smaller last batch): rows are padded to
    the largest count for the collective and the padding is dropped again.
    """
    if not is_distributed():
        return x
    n = torch.tensor([x.shape[0]], device=x.device, dtype=torch.long)
    counts = [torch.zeros_like(n) for _ in range(dist.get_world_size())]
    dist.all_gather(counts, n)
    sizes = [int(c.item()) for c in counts]
    padded = x.new_zeros((max(sizes), *x.shape[1:]))
    padded[: x.shape[0]] = x
    parts = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(parts, padded.contiguous())
    return torch.cat([p[:s] for p, s in zip(parts, sizes)], dim=0)
