"""Kernel Inception Distance (Binkowski et al., "Demystifying MMD GANs", ICLR 2018).

KID is the squared maximum mean discrepancy between two feature sets under the polynomial
kernel `k(x, y) = (gamma * x.y + coef0) ** degree` (defaults: degree 3, gamma 1/D, coef0 1),
estimated without bias: for subsets X, Y of m features each,

    MMD^2_u = (sum_{i != j} k(x_i, x_j) + sum_{i != j} k(y_i, y_j)) / (m (m - 1))
              - 2 sum_{i, j} k(x_i, y_j) / m^2,

averaged over `subsets` random subset pairs (mean and standard deviation reported). The draws
are torch-fidelity's: one `numpy.random.RandomState(seed)`, and per subset first
`choice(n1, m, replace=False)` for set 1, then `choice(n2, m, replace=False)` for set 2, so the
same features and seed give the same subsets. Kernels are evaluated in float64.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kid", "mmd2_unbiased", "polynomial_kernel"]


def polynomial_kernel(
    x: np.ndarray, y: np.ndarray, degree: int = 3, gamma: float | None = None, coef0: float = 1.0
) -> np.ndarray:
    """`(gamma * x @ y.T + coef0) ** degree`, `(n, m)`; gamma defaults to 1 / D."""
    g = 1.0 / x.shape[1] if gamma is None else gamma
    return (x @ y.T * g + coef0) ** degree


def mmd2_unbiased(k_xx: np.ndarray, k_xy: np.ndarray, k_yy: np.ndarray) -> float:
    """Unbiased MMD^2 from the kernel matrices of two equal-size sets (formula above)."""
    m = k_xx.shape[0]
    if m < 2 or k_xx.shape != (m, m) or k_yy.shape != (m, m) or k_xy.shape != (m, m):
        raise ValueError(f"kernel matrices must be (m, m) with m >= 2, got {k_xx.shape}")
    within = (k_xx.sum() - np.trace(k_xx)) + (k_yy.sum() - np.trace(k_yy))
    return float(within / (m * (m - 1)) - 2.0 * k_xy.sum() / (m * m))


def kid(
    features1: np.ndarray,
    features2: np.ndarray,
    subsets: int = 100,
    subset_size: int = 1000,
    seed: int = 2020,
    degree: int = 3,
    gamma: float | None = None,
    coef0: float = 1.0,
) -> tuple[float, float]:
    """`(mean, std)` of the unbiased polynomial-kernel MMD^2 over random subset pairs.

    Raises:
        ValueError: a set has fewer than `subset_size` features (lower `subset_size`).
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets (N, D) do not match: {f1.shape} vs {f2.shape}")
    n1, n2 = len(f1), len(f2)
    if subset_size < 2 or n1 < subset_size or n2 < subset_size:
        raise ValueError(
            f"KID subset size {subset_size} needs at least that many images in both sets "
            f"(got {n1} and {n2}); lower it (--kid-subset-size)"
        )
    rng = np.random.RandomState(seed)
    mmds = np.zeros(subsets)
    for i in range(subsets):
        x = f1[rng.choice(n1, subset_size, replace=False)]
        y = f2[rng.choice(n2, subset_size, replace=False)]
        k = lambda a, b: polynomial_kernel(a, b, degree, gamma, coef0)  # noqa: E731
        mmds[i] = mmd2_unbiased(k(x, x), k(x, y), k(y, y))
    return float(mmds.mean()), float(mmds.std())
