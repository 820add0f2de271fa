"""Rejection sampling: draw `ceil(n / acceptance)` candidates, keep the `n` best by a scorer.

The classifier-based rejection of the paper's class-conditional ImageNet results (Esser et al.,
CVPR 2021; SPEC §5.7); the scorer is any `fn(images, class_ids) -> scores` the user names.
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from tqdm import tqdm

from taming.pipeline.errors import SampleError
from taming.pipeline.sample import iter_samples
from taming.sampling.config import SamplingConfig

__all__ = ["Scorer", "load_scorer", "rejection_sample"]

Scorer = Callable[[Tensor, Tensor | None], Any]
"""`scorer(images (N, 3, H, W) in [-1, 1], class_ids (N,) or None) -> scores (N,)`."""


def _scores(scorer: Scorer, images: Tensor, class_ids: Tensor | None) -> Tensor:
    s = scorer(images, class_ids)
    s = torch.as_tensor(s if not isinstance(s, np.ndarray) else s.copy())
    s = s.detach().float().cpu().reshape(-1)
    if s.numel() != images.shape[0]:
        raise SampleError(f"the scorer returned {s.numel()} scores for {images.shape[0]} images")
    return s


def rejection_sample(
    model: Any,
    n: int,
    scorer: Scorer,
    acceptance: float,
    cond: Any = None,
    config: SamplingConfig | None = None,
    *,
    batch_size: int = 25,
    progress: bool = False,
    **sample_kwargs: Any,
) -> tuple[Tensor, Tensor, Tensor, dict[str, Any]]:
    """Sample `ceil(n / acceptance)` candidates and keep the `n` with the highest scores.

    Candidates are scored batch by batch (only the best `n` are held in memory).

    Args:
        model: the transformer model.
        n: images to keep.
        scorer: `scorer(images (N, 3, H, W) in [-1, 1], class_ids (N,) or None) -> (N,)`.
        acceptance: fraction of candidates kept, in (0, 1].
        cond: condition as in `sample_images` (one class id for class models).
        config: decoding settings (`SamplingConfig`).
        batch_size: candidates per batch.
        progress: tqdm bar over the candidates.
        **sample_kwargs: `size`, `generator`, `window` of `sample_images`, or fields of the
            `SamplingConfig` (`top_k=100`).

    Returns:
        `(images (n, ...), tokens (n, h, w), scores (n,), info)`, best first; `info` has
        `candidates`, `kept`, `acceptance_rate`, `score_mean_all`, `score_mean_kept`.
    """
    if not 0.0 < acceptance <= 1.0:
        raise SampleError(f"acceptance must be in (0, 1], got {acceptance}")
    candidates = math.ceil(n / acceptance - 1e-9)
    class_ids = None
    if model.n_classes is not None and cond is not None:
        ids = torch.as_tensor(cond, dtype=torch.long).reshape(-1)
        if ids.numel() != 1:
            raise SampleError("rejection sampling takes one class id per call")
        class_ids = ids
    best_x = best_t = best_s = None
    total, count = 0.0, 0
    bar = tqdm(total=candidates, desc="rejection sampling", unit="img", disable=not progress)
    with bar:
        for x, t in iter_samples(
            model, candidates, cond, config, batch_size=batch_size, progress=False, **sample_kwargs
        ):
            ids = None if class_ids is None else class_ids.expand(x.shape[0])
            s = _scores(scorer, x, ids)
            total, count = total + float(s.sum()), count + s.numel()
            if best_s is None:
                best_x, best_t, best_s = x, t, s
            else:
                best_x, best_t = torch.cat((best_x, x)), torch.cat((best_t, t))
                best_s = torch.cat((best_s, s))
            keep = torch.topk(best_s, min(n, best_s.numel())).indices  # best first
            best_x, best_t, best_s = best_x[keep], best_t[keep], best_s[keep]
            bar.update(x.shape[0])
    info = {
        "candidates": candidates,
        "kept": int(best_s.numel()),
        "acceptance_rate": best_s.numel() / candidates,
        "score_mean_all": total / max(count, 1),
        "score_mean_kept": float(best_s.mean()),
    }
    return best_x, best_t, best_s, info


def load_scorer(spec: str) -> Scorer:
    """`"package.module:function"` or `"path/to/file.py:function"` -> the function."""
    if ":" not in spec:
        raise SampleError(f"--rejection: expected MODULE:FUNCTION, got '{spec}'")
    module_name, func_name = spec.rsplit(":", 1)
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            if not path.is_file():
                raise SampleError(f"--rejection: file not found: {path}")
            spec_ = importlib.util.spec_from_file_location(f"_taming_scorer_{path.stem}", path)
            module = importlib.util.module_from_spec(spec_)
            spec_.loader.exec_module(module)
        else:
            if "" not in sys.path and str(Path.cwd()) not in sys.path:
                sys.path.insert(0, str(Path.cwd()))  # modules next to the user, as `python -m`
            module = importlib.import_module(module_name)
    except ImportError as e:
        raise SampleError(f"--rejection: cannot import '{module_name}': {e}") from e
    fn = getattr(module, func_name, None)
    if not callable(fn):
        raise SampleError(f"--rejection: '{module_name}' has no function '{func_name}'")
    return fn
