"""Run the web app with uvicorn in a background thread on a free localhost port.

For tests, benchmarks and notebooks: `with serve_in_thread(app) as url: ...`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["serve_in_thread"]


@contextmanager
def serve_in_thread(app, host: str = "127.0.0.1", timeout: float = 20.0) -> Iterator[str]:
    """Serve `app` on a free port of `host` in a daemon thread; yields the base URL."""
    import uvicorn

    sock = socket.socket()
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.time() + timeout
    while not server.started:
        if time.time() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
