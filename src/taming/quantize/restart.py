"""Dead-code restart: codes unused for a number of steps are moved onto recent encodings.

"Jukebox: A Generative Model for Music" (Dhariwal et al., 2020, "random restarts"), also
SoundStream (Zeghidour et al., 2021) and "Straightening Out the Straight-Through Estimator"
(Huh et al., 2023): a code that no encoder output selected for `threshold` consecutive
training steps is replaced by an encoder output of the current batch chosen at random, so the
codebook cannot collapse onto a few codes.

`unused_steps` (K,) counts the steps since each code was last selected, from usage counts
summed over all processes. The replacement vectors are drawn from the batch gathered over all
processes (in rank order) with a generator seeded by `seed` and the number of restarts so
far (`restarts`), and rank 0's choice is broadcast: N processes with 1/N of a batch each end
with the codebook of one process with the whole batch.
"""

from __future__ import annotations

import torch
from torch import nn

from taming.quantize.distributed import all_gather_rows, broadcast, is_distributed

__all__ = ["DeadCodeRestart"]


class DeadCodeRestart(nn.Module):
    """Tracks code usage and picks replacement vectors for dead codes.

    Args:
        num_codes: K.
        threshold: restart a code after this many consecutive training steps without use.
        seed: seed of the replacement draws.
    """

    unused_steps: torch.Tensor
    restarts: torch.Tensor

    def __init__(self, num_codes: int, threshold: int, seed: int = 0) -> None:
        super().__init__()
        if threshold < 1:
            raise ValueError(f"restart_unused_after must be >= 1, got {threshold}")
        self.threshold = threshold
        self.seed = seed
        self.register_buffer("unused_steps", torch.zeros(num_codes, dtype=torch.long))
        self.register_buffer("restarts", torch.zeros((), dtype=torch.long))

    @torch.no_grad()
    def step(
        self, counts: torch.Tensor, candidates: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """Count one step from global usage counts (K,); return `(dead ids, new vectors)`.

        `candidates` (N, D) are this process's encodings of the step. Returns None when no code
        is dead. The returned dead codes' counters are reset.
        """
        used = counts > 0
        self.unused_steps.add_(1).masked_fill_(used, 0)
        dead = (self.unused_steps >= self.threshold).nonzero().squeeze(1)  # (n_dead,)
        if dead.numel() == 0:
            return None
        pool = all_gather_rows(candidates.detach().contiguous())  # (N_total, D)
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + int(self.restarts.item()))
        n, k = pool.shape[0], dead.numel()
        pick = (
            torch.randperm(n, generator=g)[:k] if n >= k else torch.randint(0, n, (k,), generator=g)
        )
        vectors = pool[pick.to(pool.device)].clone()
        if is_distributed():
            broadcast(vectors)
        self.unused_steps[dead] = 0
        self.restarts.add_(1)
        return dead, vectors
