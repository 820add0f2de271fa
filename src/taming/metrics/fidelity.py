"""FID, KID and IS between image sets, with torch-fidelity's defaults and draws.

    from taming.metrics import calculate_metrics
    calculate_metrics("samples/", "reference/", kid=True, isc=True)
    # {'fid': ..., 'kid_mean': ..., 'kid_std': ..., 'isc_mean': ..., 'isc_std': ..., 'n1', 'n2'}

Inputs: an image folder, a dataset config (`.yaml`), a statistics `.npz` (`mu`, `sigma`: FID
only; a feature-cache `.npz` of this package also serves KID and IS), an `ImageSource`, or
`Features`. As in torch-fidelity's `calculate_metrics(input1, input2, ...)`: IS is computed on
`input1`; KID uses 100 subsets of 1000 images and seed 2020, IS 10 splits and seed 2020
(`taming.metrics.kid`, `taming.metrics.isc`); folders are read in its sorted order
(`taming.metrics.sources`), so the same images and weights give the same numbers.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from taming.config import ConfigError
from taming.metrics.extractor import Features, InceptionExtractor
from taming.metrics.fid import frechet_distance, frechet_distance_features, load_statistics
from taming.metrics.isc import inception_score
from taming.metrics.kid import kid as kid_fn
from taming.metrics.sources import ImageSource, open_source

__all__ = ["Stats", "calculate_metrics", "fid_between", "resolve_input"]

Input = str | os.PathLike | ImageSource | Features


class Stats:
    """Precomputed FID statistics (`mu`, `sigma`) without features."""

    def __init__(self, mu: np.ndarray, sigma: np.ndarray, name: str = "statistics") -> None:
        self.mu, self.sigma, self.name = mu, sigma, name

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        return self.mu, self.sigma


def resolve_input(spec: Input, recursive: bool = False) -> ImageSource | Features | Stats:
    """Open an input (see the module docstring); `.npz` files are read here."""
    if isinstance(spec, ImageSource | Features | Stats):
        return spec
    p = Path(spec)
    if p.is_file() and p.suffix.lower() == ".npz":
        with np.load(p) as data:
            if "pool3" in data.files and "logits" in data.files:
                return Features(data["pool3"], data["logits"])
        mu, sigma = load_statistics(p)
        return Stats(mu, sigma, name=p.name)
    return open_source(p, recursive=recursive)


def _name(x: Any) -> str:
    return getattr(x, "name", type(x).__name__)


def fid_between(a: Features | Stats, b: Features | Stats) -> float:
    """FID of two feature sets or statistics (the exact small-set form when it applies)."""
    if isinstance(a, Features) and isinstance(b, Features):
        if min(len(a), len(b)) <= a.pool3.shape[1]:
            return frechet_distance_features(a.pool3, b.pool3)
    return frechet_distance(*a.statistics(), *b.statistics())


def calculate_metrics(
    input1: Input,
    input2: Input | None = None,
    *,
    fid: bool = True,
    kid: bool = False,
    isc: bool = False,
    extractor: InceptionExtractor | None = None,
    inception_weights: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 32,
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    kid_degree: int = 3,
    kid_gamma: float | None = None,
    kid_coef0: float = 1.0,
    isc_splits: int = 10,
    seed: int = 2020,
    cache: bool = True,
    cache_dir: str | os.PathLike | None = None,
    recursive: bool = False,
    progress: bool = True,
) -> dict[str, float | int]:
    """FID (and KID, IS) of `input1` against `input2`.

    Args:
        input1: generated images (IS is computed on these).
        input2: reference images or statistics (needed for FID and KID).
        fid, kid, isc: which metrics.
        extractor: an `InceptionExtractor` to use (else built from `inception_weights`).
        inception_weights: weights file (None: search the usual places, see
            `taming.metrics.inception_weights`).
        kid_subsets, kid_subset_size, kid_degree, kid_gamma, kid_coef0: KID settings.
        isc_splits: IS splits.
        seed: seed of KID's subsets and IS's shuffle (torch-fidelity's `rng_seed`).
        cache: read/write the per-set feature cache (`taming.metrics.extractor`).
        recursive: list folders recursively (torch-fidelity's `samples_find_deep`).

    Returns:
        `fid`, `kid_mean`, `kid_std`, `isc_mean`, `isc_std` as asked, and `n1`, `n2`.
    """
    if (fid or kid) and input2 is None:
        raise ConfigError("FID and KID need a reference (input2)")
    if not (fid or kid or isc):
        raise ConfigError("no metric asked for (fid, kid, isc)")
    a = resolve_input(input1, recursive)
    b = resolve_input(input2, recursive) if (fid or kid) and input2 is not None else None
    if isc and isinstance(a, Stats):
        raise ConfigError(f"IS needs the images or features of {_name(a)}, not statistics")
    if kid and (isinstance(a, Stats) or isinstance(b, Stats)):
        which = a if isinstance(a, Stats) else b
        raise ConfigError(f"KID needs images or features; {_name(which)} holds only mu, sigma")
    if kid and min(len(a), len(b)) < kid_subset_size:
        raise ConfigError(
            f"KID subset size {kid_subset_size} needs at least that many images in both sets "
            f"({_name(a)}: {len(a)}, {_name(b)}: {len(b)}); lower it (--kid-subset-size)"
        )
    if isc and len(a) < isc_splits:
        raise ConfigError(
            f"IS with {isc_splits} splits needs at least that many images "
            f"({_name(a)}: {len(a)}); lower --isc-splits"
        )
    if extractor is None and any(isinstance(x, ImageSource) for x in (a, b)):
        extractor = InceptionExtractor(inception_weights, device=device, batch_size=batch_size)

    def feats(x):
        if isinstance(x, ImageSource):
            return extractor.features(x, cache=cache, cache_dir=cache_dir, progress=progress)
        return x

    fa = feats(a)
    fb = feats(b) if b is not None else None
    out: dict[str, float | int] = {}
    if fid:
        out["fid"] = fid_between(fa, fb)
    if kid:
        mean, std = kid_fn(
            fa.pool3,
            fb.pool3,
            kid_subsets,
            kid_subset_size,
            seed,
            kid_degree,
            kid_gamma,
            kid_coef0,
        )
        out["kid_mean"], out["kid_std"] = mean, std
    if isc:
        mean, std = inception_score(fa.logits, splits=isc_splits, seed=seed)
        out["isc_mean"], out["isc_std"] = mean, std
    if isinstance(fa, Features):
        out["n1"] = len(fa)
    if isinstance(fb, Features):
        out["n2"] = len(fb)
    return out
