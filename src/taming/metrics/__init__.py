"""Evaluation: FID / KID / IS as torch-fidelity computes them, reconstruction and codebook use.

    from taming.metrics import calculate_metrics, evaluate_reconstruction
    calculate_metrics("samples/", "reference/", kid=True, isc=True)

Submodules: `inception` (the FID Inception-v3), `inception_fast` (its inference form),
`inception_weights` (finding the weights, torch-free), `extractor` (batched, cached features),
`sources` (folders and dataset configs, torch-fidelity's order), `fid`, `kid`, `isc`,
`fidelity` (the three between image sets), `image` (PSNR, SSIM), `codebook`,
`reconstruction`. Names are imported lazily, so `import taming.metrics` stays light.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "calculate_metrics": "fidelity",
    "InceptionExtractor": "extractor",
    "Features": "extractor",
    "frechet_distance": "fid",
    "frechet_distance_features": "fid",
    "load_statistics": "fid",
    "save_statistics": "fid",
    "inception_score": "isc",
    "psnr": "image",
    "ssim": "image",
    "evaluate_reconstruction": "reconstruction",
    "write_reconstruction_report": "reconstruction",
    "resolve_inception_weights": "inception_weights",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'taming.metrics' has no attribute {name!r}")
    return getattr(importlib.import_module(f"taming.metrics.{module}"), name)
