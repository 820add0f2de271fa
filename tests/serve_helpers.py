"""Helpers for the web-app tests: image bytes and tiny served models."""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

from taming.serve import ServedModel, first_stage_info
from taming.serve import sampling as serve_sampling
from taming.serve.background import serve_in_thread as uvicorn_server  # noqa: F401


def png_bytes(size=(40, 30), seed: int = 0, mode: str = "RGB", fmt: str = "PNG") -> bytes:
    """A random image file's bytes, `size` = (W, H)."""
    rng = np.random.default_rng(seed)
    shape = (size[1], size[0], 3) if mode == "RGB" else (size[1], size[0])
    arr = rng.integers(0, 255 if mode == "RGB" else 5, shape, dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr, mode=mode).save(buf, format=fmt)
    return buf.getvalue()


def served(models: dict) -> tuple[list[ServedModel], list[ServedModel]]:
    """First stage of the first model and every transformer, as the server holds them."""
    first = next(iter(models.values())).first_stage_model
    stages = [ServedModel("vq", "tiny/vq", first, first_stage_info(first))]
    transformers = [
        ServedModel(kind, f"tiny/{kind}", m, serve_sampling.describe(m))
        for kind, m in models.items()
    ]
    return stages, transformers
