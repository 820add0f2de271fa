"""k-means initialisation of a codebook from the first training batch.

"Jukebox: A Generative Model for Music" (Dhariwal et al., 2020) and SoundStream (Zeghidour et
al., 2021) initialise the codebook with k-means centroids of the first batch of encoder
outputs instead of random vectors, so every code starts where data is. Lloyd's algorithm:
centroids start at K samples drawn without replacement (with replacement when the batch has
fewer than K vectors), then `iters` rounds of nearest-centroid assignment and mean update;
a centroid that receives no sample keeps its previous value. With `spherical=True` the data
and centroids are unit vectors and the assignment is by cosine similarity (spherical k-means,
for l2-normalised codebooks).

Under DDP the batch is gathered from all processes (in rank order) and the centroids computed
on rank 0 are broadcast, so every process gets the codebook a single process would compute
from the whole batch.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from taming.quantize.distributed import all_gather_rows, broadcast, is_distributed

__all__ = ["kmeans", "kmeans_distributed", "nearest_centroid"]


def nearest_centroid(x: torch.Tensor, centroids: torch.Tensor, spherical: bool) -> torch.Tensor:
    """Index of the nearest centroid (K, D) for each row of x (N, D)."""
    if spherical:
        return (x @ centroids.t()).argmax(dim=1)
    d = torch.addmm(centroids.pow(2).sum(1), x, centroids.t(), alpha=-2.0)  # ||c||^2 - 2 x.c
    return d.argmin(dim=1)


@torch.no_grad()
def kmeans(
    x: torch.Tensor,
    k: int,
    iters: int = 10,
    spherical: bool = False,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Lloyd's k-means on x (N, D) -> (centroids (K, D), cluster sizes (K,)).

    `generator` (a CPU generator) makes the initial choice of centroids reproducible.
    """
    x = x.detach().float()
    if spherical:
        x = F.normalize(x, dim=1)
    n = x.shape[0]
    if n >= k:
        first = torch.randperm(n, generator=generator)[:k]
    else:
        first = torch.randint(0, n, (k,), generator=generator)
    centroids = x[first.to(x.device)].clone()  # (K, D)
    counts = torch.zeros(k, device=x.device)
    for _ in range(iters):
        assign = nearest_centroid(x, centroids, spherical)  # (N,)
        counts = torch.bincount(assign, minlength=k).to(x.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, assign, x)  # (K, D)
        filled = counts > 0
        centroids[filled] = sums[filled] / counts[filled, None]
        if spherical:
            centroids = F.normalize(centroids, dim=1)
    return centroids, counts


@torch.no_grad()
def kmeans_distributed(
    x: torch.Tensor,
    k: int,
    iters: int = 10,
    spherical: bool = False,
    seed: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """`kmeans` of the rows of x gathered over all processes; identical result on every one."""
    x_all = all_gather_rows(x.detach().float().contiguous())
    centroids, counts = kmeans(
        x_all, k, iters, spherical, generator=torch.Generator().manual_seed(seed)
    )
    if is_distributed():  # rank 0's result, bit for bit, everywhere
        broadcast(centroids)
        broadcast(counts)
    return centroids, counts
