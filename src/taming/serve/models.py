"""The models a web app serves: first stages and transformers, each with its own lock.

Model work runs in worker threads; a lock per model keeps one request at a time on each model
(their buffers and KV caches are not shared safely), while other models and the server's other
requests go on.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

__all__ = ["Jobs", "ServedModel", "first_stage_info", "unique_names"]


@dataclass
class ServedModel:
    """One loaded model: its name on the page, where it came from, and what it is."""

    name: str
    path: str
    model: nn.Module
    info: dict
    lock: threading.Lock = field(default_factory=threading.Lock)

    def public(self) -> dict:
        return {"name": self.name, "path": self.path, **self.info}


@torch.no_grad()
def first_stage_info(stage: nn.Module) -> dict:
    """Factor `f` (measured on a small input) and the training size of a first stage."""
    device = next(stage.parameters()).device
    probe = 64
    z = stage.encode_to_prequant(torch.zeros(1, 3, probe, probe, device=device))
    f = probe // int(z.shape[-1])
    res = int((getattr(stage, "ddconfig", None) or {}).get("resolution", 256))
    res = max(f, res // f * f)
    return {"kind": "first_stage", "factor": f, "size": [res, res]}


def unique_names(paths: list[str]) -> list[str]:
    """Page names of run folders: their base names, numbered where two collide."""
    names: list[str] = []
    for p in paths:
        base = Path(p.rstrip("/")).name or p
        name, k = base, 2
        while name in names:
            name, k = f"{base}-{k}", k + 1
        names.append(name)
    return names


class Jobs:
    """Running jobs and their progress, for `GET /api/jobs`."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[str, dict[str, Any]] = {}

    def start(self, kind: str, model: str, total: int, job_id: str | None = None) -> str:
        job_id = (job_id or uuid.uuid4().hex[:12])[:64]
        with self._lock:
            self._jobs[job_id] = {
                "id": job_id,
                "kind": kind,
                "model": model,
                "done": 0,
                "total": total,
                "state": "queued",
                "started": time.time(),
            }
        return job_id

    def update(self, job_id: str, **values: Any) -> None:
        with self._lock:
            if job_id in self._jobs:
                self._jobs[job_id].update(values)

    def finish(self, job_id: str) -> None:
        with self._lock:
            self._jobs.pop(job_id, None)

    def snapshot(self) -> list[dict]:
        now = time.time()
        with self._lock:
            return [{**j, "seconds": round(now - j["started"], 2)} for j in self._jobs.values()]
