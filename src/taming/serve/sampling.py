"""The one door from the web app to the project's image-level sampling API.

Every call the app makes into sampling goes through this module (`taming.pipeline` and
`taming.loading.load_sampling_model`), so a change of that API is one edit here.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from torch import Tensor


def _api() -> Any:
    """The image-level sampling package."""
    import taming.pipeline as api

    return api


def sample_error() -> type[Exception]:
    """The exception the sampling API raises for a request it cannot carry out."""
    return _api().SampleError


def load_transformer(path: str | Path, device: torch.device, unsafe: bool = False) -> Any:
    """A `Net2NetTransformer` from a run folder, in eval mode."""
    from taming.loading import load_sampling_model

    return load_sampling_model(path, unsafe=unsafe, device=device)[0]


def describe(model: Any) -> dict:
    """What the page needs to know of a transformer: its condition kind and image size."""
    f = model.first_stage_factor
    h, w = model.training_window
    n_classes = model.n_classes
    if model.condition_kind == "none":
        kind = "unconditional"
    elif n_classes is not None:
        kind = "class"
    else:
        kind = str(getattr(model, "cond_stage_key", "condition"))
    return {
        "kind": kind,
        "n_classes": None if n_classes is None else int(n_classes),
        "size": [h * f, w * f],
        "factor": f,
        "tokens": [h, w],
    }


def _generator(model: Any, seed: int | None) -> torch.Generator | None:
    if seed is None:
        return None
    device = next(model.parameters()).device
    return torch.Generator(device).manual_seed(int(seed))


def condition_from_file(model: Any, path: Path, size: tuple[int, int]) -> Tensor:
    """A condition file (e.g. a segmentation label map) read for `model`'s cond stage."""
    return _api().load_condition(model, path, size=size)


def sample(
    model: Any,
    n: int,
    cond: Any,
    *,
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    cfg_scale: float,
    seed: int | None,
    progress: Any = None,
) -> Tensor:
    """`n` images `(n, 3, H, W)` in [-1, 1]; `progress(done, total)` after each batch."""
    api = _api()
    gen = _generator(model, seed)
    batch = max(1, math.ceil(n / 4))  # up to 4 progress reports
    out = []
    for images, _ in api.iter_samples(
        model,
        n,
        cond,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        cfg_scale=cfg_scale,
        generator=gen,
        batch_size=batch,
    ):
        out.append(images.cpu())
        if progress is not None:
            progress(sum(x.shape[0] for x in out), n)
    return torch.cat(out)


def complete(
    model: Any,
    image: Tensor,
    keep_top: float,
    *,
    top_k: int | None,
    top_p: float | None,
    temperature: float,
    seed: int | None,
    cond: Any = None,
) -> Tensor:
    """One completion `(1, 3, H, W)` of `image` keeping its top `keep_top` fraction."""
    images, _, _ = _api().complete_image(
        model,
        image,
        1,
        cond,
        keep_top=keep_top,
        top_k=top_k,
        top_p=top_p,
        temperature=temperature,
        generator=_generator(model, seed),
    )
    return images.cpu()
