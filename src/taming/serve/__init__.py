"""`taming serve`: a small web app for reconstruction, sampling and completion.

The interactive face of the original project (its streamlit `scripts/sample_conditional.py`)
as a plain HTML page over Starlette endpoints (the optional extra `web`). `load_served` loads
run folders; `create_app` builds the ASGI app from loaded models (tests pass their own).
"""

from __future__ import annotations

from pathlib import Path

import torch

from taming.serve.models import ServedModel, first_stage_info, unique_names
from taming.serve.uploads import Limits

__all__ = ["Limits", "ServedModel", "create_app", "load_served"]


def create_app(*args, **kwargs):
    """The Starlette app (see `taming.serve.app.create_app`)."""
    from taming.serve.app import create_app as _create

    return _create(*args, **kwargs)


def load_served(
    models: list[str],
    transformers: list[str] = (),
    device: str | torch.device = "cpu",
    unsafe: bool = False,
) -> tuple[list[ServedModel], list[ServedModel]]:
    """Load first stages (`taming.load`; a transformer run gives its first stage) and
    transformers from run folders."""
    import taming
    from taming.serve import sampling

    device = torch.device(device)
    stages = []
    for name, path in zip(unique_names(list(models)), models):
        model = taming.load(path, unsafe=unsafe, device=device)
        stage = getattr(model, "first_stage_model", model)
        stages.append(ServedModel(name, str(Path(path)), stage, first_stage_info(stage)))
    served = []
    for name, path in zip(unique_names(list(transformers)), transformers):
        model = sampling.load_transformer(path, device=device, unsafe=unsafe)
        served.append(ServedModel(name, str(Path(path)), model, sampling.describe(model)))
    return stages, served
