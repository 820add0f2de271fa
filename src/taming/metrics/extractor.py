"""Batched FID Inception-v3 features of an image set, with a per-set, per-weights cache.

    ex = InceptionExtractor()                        # weights looked up on disk (never fetched)
    feats = ex.features(FolderSource("samples/"))    # Features(pool3 (N, 2048), logits (N, 1008))

Features are float32 (as the network computes them). With `cache=True` they are kept in
`$TAMING_HOME/metrics_cache/<name>-<key>.npz` (pool3 and logits, about 12 KB per image;
mu and sigma too for sets larger than 2048), keyed by the set's fingerprint (file paths,
sizes and modification times, see `taming.metrics.sources`), the sha256 of the weights file
and the network's input size: a changed file, other weights or another size make a new
entry; nothing stale is read.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from taming.metrics.fid import statistics
from taming.metrics.inception import INPUT_SIZE, FIDInceptionV3, load_inception
from taming.metrics.inception_fast import FastInceptionV3
from taming.metrics.inception_weights import (
    resolve_inception_weights,
    taming_home,
    weights_digest,
)
from taming.metrics.sources import ImageSource

logger = logging.getLogger(__name__)

__all__ = ["Features", "InceptionExtractor", "default_cache_dir"]

_CACHE_VERSION = "1"


def default_cache_dir() -> Path:
    """`$TAMING_HOME/metrics_cache` (default `~/.cache/taming/metrics_cache`)."""
    return taming_home() / "metrics_cache"


@dataclass
class Features:
    """Inception features of an image set, in the set's order."""

    pool3: np.ndarray  # (N, 2048) float32
    logits: np.ndarray  # (N, 1008) float32, fc without bias ("logits_unbiased")
    _stats: tuple[np.ndarray, np.ndarray] | None = None

    def __len__(self) -> int:
        return int(self.pool3.shape[0])

    def statistics(self) -> tuple[np.ndarray, np.ndarray]:
        """`(mu, sigma)` of the pool3 features (float64)."""
        if self._stats is None:
            self._stats = statistics(self.pool3)
        return self._stats


class InceptionExtractor:
    """The FID Inception-v3 with its weights, run batch-wise on image sets.

    Args:
        weights: weights file (None: search `$TAMING_HOME` and the torch hub cache).
        device: where to run (default: CUDA when available).
        batch_size: images per forward pass.
        input_size: network input side (299; smaller only for tests with random weights).
        fast: use the inference form (`FastInceptionV3`; else the reference form).
        model: an already built network (weights and digest then come from the caller).
        digest: weights digest to key the cache with when `model` is given.
    """

    def __init__(
        self,
        weights: str | os.PathLike | None = None,
        device: str | torch.device | None = None,
        batch_size: int = 32,
        input_size: int = INPUT_SIZE,
        fast: bool = True,
        model: torch.nn.Module | None = None,
        digest: str | None = None,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        self.batch_size = int(batch_size)
        if model is None:
            self.weights_path = resolve_inception_weights(weights)
            ref = load_inception(self.weights_path, input_size=input_size)
            self.digest = weights_digest(self.weights_path)
            model = FastInceptionV3(ref) if fast else ref
        else:
            self.weights_path = None
            self.digest = digest
        self.input_size = int(getattr(model, "input_size", input_size))
        self.model = model.to(self.device).eval()

    @classmethod
    def from_reference(
        cls, ref: FIDInceptionV3, digest: str | None = None, fast: bool = True, **kwargs
    ) -> InceptionExtractor:
        """An extractor around an in-memory network (tests, benchmarks)."""
        model = FastInceptionV3(ref) if fast else ref
        return cls(model=model, digest=digest, **kwargs)

    @torch.inference_mode()
    def __call__(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 `(B, 3, H, W)` -> float32 `(pool3 (B, 2048), logits (B, 1008))` on the CPU."""
        pool3, logits = self.model(images.to(self.device, non_blocking=True))
        return pool3.float().cpu(), logits.float().cpu()

    def extract(self, source: ImageSource, progress: bool = True) -> Features:
        """Features of every image of `source`, in its order."""
        pools, logits = [], []
        with tqdm(
            total=len(source),
            desc=f"inception {source.name}",
            unit="img",
            disable=not progress,
            leave=False,
        ) as bar:
            for batch in source.batches(self.batch_size):
                p, lg = self(batch)
                pools.append(p.numpy())
                logits.append(lg.numpy())
                bar.update(batch.shape[0])
        if not pools:
            raise ValueError(f"{source.name}: no images")
        return Features(np.concatenate(pools), np.concatenate(logits))

    def cache_path(self, source: ImageSource, cache_dir: str | os.PathLike | None) -> Path | None:
        """Where the features of `source` are cached (None: not cacheable)."""
        fp = source.fingerprint()
        if fp is None or self.digest is None:
            return None
        key = f"{_CACHE_VERSION}|{fp}|{self.digest}|{self.input_size}"
        h = hashlib.sha256(key.encode()).hexdigest()[:20]
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", source.name)[:40] or "images"
        return Path(cache_dir or default_cache_dir()) / f"{slug}-{h}.npz"

    def features(
        self,
        source: ImageSource,
        cache: bool = True,
        cache_dir: str | os.PathLike | None = None,
        progress: bool = True,
    ) -> Features:
        """Features of `source`, read from / written to the cache when it has a fingerprint."""
        path = self.cache_path(source, cache_dir) if cache else None
        if path is not None and path.is_file():
            try:
                with np.load(path) as data:
                    stats = (data["mu"], data["sigma"]) if "sigma" in data.files else None
                    feats = Features(data["pool3"], data["logits"], stats)
                if len(feats) == len(source):
                    logger.info("%s: cached features %s", source.name, path)
                    return feats
            except (OSError, KeyError, ValueError) as e:
                logger.warning("%s: ignoring unreadable cache file (%s)", path, e)
        feats = self.extract(source, progress=progress)
        if path is not None and len(feats) >= 2:
            arrays = {"pool3": feats.pool3, "logits": feats.logits}
            if len(feats) > feats.pool3.shape[1]:  # else sigma is cheaper to recompute
                arrays["mu"], arrays["sigma"] = feats.statistics()
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(path.name + ".tmp.npz")
            np.savez(tmp, **arrays)
            os.replace(tmp, path)  # never a half-written cache file
            logger.info("%s: features cached in %s", source.name, path)
        return feats
