"""Helpers for the web-app tests: tiny served models and a real uvicorn on a free port."""

from __future__ import annotations

import io
import socket
import threading
import time
from contextlib import contextmanager

import numpy as np
from PIL import Image

from taming.serve import ServedModel, first_stage_info
from taming.serve import sampling as serve_sampling


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


@contextmanager
def uvicorn_server(app):
    """Serve `app` with uvicorn on a free 127.0.0.1 port in a thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started:
        if time.time() > deadline:
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
