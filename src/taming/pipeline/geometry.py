"""Model geometry for image-level sampling: first-stage factor, training window, latent grid.

Esser et al. (CVPR 2021): a first stage with `len(ch_mult) - 1` downsamplings maps an `H x W`
image to an `H/f x W/f` code grid; the transformer is trained on the grid of the first stage's
`resolution`. Also the kind of condition a model takes (unconditional, class, layout).
"""

from __future__ import annotations

from typing import Any

import torch

from taming.pipeline.errors import SampleError

# model geometry and conditions


def first_stage_factor(model: Any) -> int:
    """Downsampling factor `f` of the first stage (`2 ** (len(ch_mult) - 1)`)."""
    ddconfig = getattr(model.first_stage_model, "ddconfig", None)
    if not ddconfig or "ch_mult" not in ddconfig:
        raise SampleError("the first stage has no ddconfig.ch_mult: cannot tell its factor f")
    return 2 ** (len(ddconfig["ch_mult"]) - 1)


def training_window(model: Any) -> tuple[int, int]:
    """Latent grid `(h, w)` the transformer was trained on: first-stage `resolution / f`."""
    f = first_stage_factor(model)
    res = int(model.first_stage_model.ddconfig.get("resolution", 0))
    if res < f:
        raise SampleError("the first stage has no ddconfig.resolution: pass window=(h, w)")
    return res // f, res // f


def latent_grid(model: Any, size: tuple[int, int]) -> tuple[int, int]:
    """Latent grid `(h, w)` of an image size `(H, W)`; both must be multiples of `f`."""
    f = first_stage_factor(model)
    H, W = size
    if H <= 0 or W <= 0 or H % f or W % f:
        raise SampleError(
            f"size {H}x{W} (HxW) is not a positive multiple of the first stage's factor "
            f"f={f}; e.g. {max(f, H // f * f)}x{max(f, W // f * f)}"
        )
    return H // f, W // f


def _device(model: Any) -> torch.device:
    return model.transformer.tok_emb.weight.device


def _stage(model: Any) -> Any:
    return model.cond_stage_model


def _is_unconditional(model: Any) -> bool:
    from taming.cond.stages import SOSProvider

    return bool(getattr(model, "be_unconditional", False)) or isinstance(_stage(model), SOSProvider)


def _n_classes(model: Any) -> int | None:
    from taming.cond.stages import Labelator

    stage = _stage(model)
    return int(stage.n_classes) if isinstance(stage, Labelator) else None


def _is_layout(model: Any) -> bool:
    from taming.cond.stages import DummyCondStage

    return isinstance(_stage(model), DummyCondStage)


def _check_identity_permuter(model: Any, what: str) -> None:
    from taming.transformer.permuter import Identity

    if not isinstance(model.permuter, Identity):
        raise SampleError(
            f"{what} works on raster-order tokens; this model uses the "
            f"{type(model.permuter).__name__} permuter"
        )
