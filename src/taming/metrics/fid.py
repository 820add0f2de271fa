"""Frechet Inception Distance between two feature sets (Heusel et al., NeurIPS 2017).

Each set is summarised by the mean `mu` and covariance `sigma` of its Inception `pool3`
features; the distance between the two Gaussians is

    FID = |mu1 - mu2|^2 + tr(sigma1) + tr(sigma2) - 2 tr((sigma1 sigma2)^(1/2)).

`tr((sigma1 sigma2)^(1/2))` is the sum of the square roots of the eigenvalues of
`sigma1 @ sigma2` (real and >= 0 in exact arithmetic; rounding leaves tiny negative or complex
parts, whose square roots' real parts are summed), as torch-fidelity computes it. Statistics
are float64; the covariance is the unbiased one (`np.cov`, divisor N - 1).

With the features at hand and fewer vectors than dimensions (N < D: small sets), the same
value is computed exactly and much faster from the centred features `C1 (n1, D)`, `C2`:
the non-zero eigenvalues of `sigma1 sigma2` are the squared singular values of
`C1 C2^T / sqrt((n1 - 1)(n2 - 1))`, so `tr((sigma1 sigma2)^(1/2))` is that matrix's nuclear
norm (`frechet_distance_features`; an `(n1, n2)` SVD instead of a `(D, D)` eigenproblem, and
without the square roots of rounding noise the near-zero eigenvalues contribute).

Statistics files: `.npz` with `mu` (D,) and `sigma` (D, D), the layout of pytorch-fid's and
TTUR's precomputed statistics (`save_statistics` writes the same).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

__all__ = [
    "frechet_distance",
    "frechet_distance_features",
    "load_statistics",
    "save_statistics",
    "statistics",
]


def statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """`(mu (D,), sigma (D, D))` in float64 of features `(N, D)`, N >= 2."""
    f = np.asarray(features, dtype=np.float64)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError(f"FID needs at least 2 feature vectors (N, D), got shape {f.shape}")
    return f.mean(axis=0), np.cov(f, rowvar=False)


def frechet_distance(
    mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray
) -> float:
    """FID between the Gaussians `N(mu1, sigma1)` and `N(mu2, sigma2)` (formula above)."""
    mu1, mu2 = np.asarray(mu1, np.float64), np.asarray(mu2, np.float64)
    s1, s2 = np.asarray(sigma1, np.float64), np.asarray(sigma2, np.float64)
    if mu1.shape != mu2.shape or s1.shape != s2.shape or s1.shape != mu1.shape * 2:
        raise ValueError(
            f"statistics do not match: mu {mu1.shape} vs {mu2.shape}, "
            f"sigma {s1.shape} vs {s2.shape}"
        )
    diff = mu1 - mu2
    eig = np.linalg.eigvals(s1 @ s2).astype(np.complex128)
    tr_covmean = float(np.sqrt(eig).real.sum())
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2.0 * tr_covmean)


def frechet_distance_features(features1: np.ndarray, features2: np.ndarray) -> float:
    """FID between two feature sets `(n1, D)`, `(n2, D)` (nuclear-norm form, see above).

    Equal to `frechet_distance(*statistics(f1), *statistics(f2))`; the cost is an
    `(n1, n2)` SVD, so use it when a set has fewer vectors than dimensions.
    """
    f1 = np.asarray(features1, dtype=np.float64)
    f2 = np.asarray(features2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1] or min(len(f1), len(f2)) < 2:
        raise ValueError(f"FID needs two (N >= 2, D) feature sets, got {f1.shape}, {f2.shape}")
    mu1, mu2 = f1.mean(0), f2.mean(0)
    c1, c2 = f1 - mu1, f2 - mu2  # (n1, D), (n2, D)
    n1, n2 = len(f1) - 1, len(f2) - 1
    nuclear = np.linalg.svd(c1 @ c2.T, compute_uv=False).sum() / np.sqrt(n1 * n2)
    diff = mu1 - mu2
    return float(diff @ diff + (c1 * c1).sum() / n1 + (c2 * c2).sum() / n2 - 2.0 * nuclear)


def load_statistics(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """`(mu, sigma)` of a statistics `.npz` (pytorch-fid / TTUR layout: keys `mu`, `sigma`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"statistics file not found: {path}")
    with np.load(path) as data:
        missing = [k for k in ("mu", "sigma") if k not in data.files]
        if missing:
            raise ValueError(
                f"{path}: no '{missing[0]}' array (keys: {', '.join(data.files) or 'none'}); "
                "expected FID statistics with 'mu' and 'sigma'"
            )
        mu, sigma = data["mu"].astype(np.float64), data["sigma"].astype(np.float64)
    if mu.ndim != 1 or sigma.shape != (mu.shape[0], mu.shape[0]):
        raise ValueError(f"{path}: mu {mu.shape} and sigma {sigma.shape} do not fit together")
    return mu, sigma


def save_statistics(path: str | os.PathLike, mu: np.ndarray, sigma: np.ndarray) -> Path:
    """Write `mu`, `sigma` as an `.npz` (readable by pytorch-fid and `load_statistics`)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, mu=np.asarray(mu), sigma=np.asarray(sigma))
    os.replace(tmp, path)
    return path
