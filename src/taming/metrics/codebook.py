"""Codebook health of a vector quantiser: usage, perplexity and dead codes.

VQ-VAE (van den Oord et al., 2017) codebooks tend to collapse onto few codes; VQGAN training
logs how many codes are in use. `CodebookCounter` keeps a histogram of the code indices seen
since the last reset (an epoch, or a whole evaluation set); `codebook_stats(counts)` turns it
into

- usage: the fraction of the `n` codes used at least once, in [0, 1];
- perplexity: `exp(H(p))` of the empirical code distribution `p`, in [1, n] (n when all codes
  are used equally often);

and `dead_codes(counts)` counts the codes never used. `collapse_warning(counts)` says when the
codebook has collapsed: fewer than `threshold` (default 5%) of the codes that *could* have
been used are, i.e. `used / min(n, tokens counted)` (a small validation set cannot use all
codes of a large codebook).
"""

from __future__ import annotations

import torch

__all__ = [
    "COLLAPSE_THRESHOLD",
    "CodebookCounter",
    "codebook_stats",
    "collapse_warning",
    "dead_codes",
    "histogram",
]

COLLAPSE_THRESHOLD = 0.05


def codebook_stats(counts: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """`(usage, perplexity)` of a histogram of code indices (n,); zeros if it is empty."""
    counts = counts.double()
    total = counts.sum()
    if total <= 0:
        zero = torch.zeros((), dtype=torch.float64, device=counts.device)
        return zero, zero
    usage = (counts > 0).double().mean()
    p = counts / total
    entropy = -(p * torch.log(p.clamp_min(1e-30))).sum()
    return usage, torch.exp(entropy)


def histogram(indices: torch.Tensor, n_codes: int) -> torch.Tensor:
    """Counts `(n_codes,)` int64 of code indices of any shape (values in [0, n_codes))."""
    flat = indices.detach().reshape(-1).long()
    return torch.bincount(flat, minlength=n_codes)[:n_codes]


def dead_codes(counts: torch.Tensor) -> int:
    """Number of codes of a histogram `(n,)` that were never used."""
    return int((counts == 0).sum())


def collapse_warning(
    counts: torch.Tensor, threshold: float = COLLAPSE_THRESHOLD, where: str = "codebook"
) -> str | None:
    """A message if the codes used are fewer than `threshold * min(n, tokens)`, else None."""
    total = int(counts.sum())
    if total <= 0:
        return None
    used = int((counts > 0).sum())
    possible = min(int(counts.numel()), total)
    if used >= threshold * possible:
        return None
    return (
        f"{where}: codebook collapse: {used} of {counts.numel()} codes used over {total} "
        f"tokens ({used / possible:.1%} of the {possible} that could be, below "
        f"{threshold:.0%}); {counts.numel() - used} dead codes"
    )


class CodebookCounter:
    """Histogram of code indices (kept on the indices' device, not a module buffer).

    Args:
        n_codes: codebook size (`n_embed`, or `re_embed` for a remapped quantizer).
    """

    def __init__(self, n_codes: int) -> None:
        self.n_codes = int(n_codes)
        self.counts: torch.Tensor | None = None

    def update(self, indices: torch.Tensor) -> None:
        """Count the indices of a batch (any shape; values in [0, n_codes))."""
        hist = histogram(indices, self.n_codes)
        self.counts = hist if self.counts is None else self.counts + hist.to(self.counts)

    def reset(self) -> None:
        self.counts = None

    def histogram(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """The counts so far, (n_codes,) int64 (zeros if nothing was counted)."""
        if self.counts is None:
            return torch.zeros(self.n_codes, dtype=torch.long, device=device)
        return self.counts.to(device)
