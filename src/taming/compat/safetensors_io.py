"""Writing safetensors files that respect the umask and are never left half-written.

`safetensors.torch.save_file` creates its file with mode 0600 whatever the umask; model files
are meant to be shared like any other output, so the file is written beside its destination,
given the mode `0666 & ~umask` and moved into place.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch

__all__ = ["save_safetensors"]


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_safetensors(
    tensors: Mapping[str, torch.Tensor], path: str | Path, metadata: dict[str, str] | None = None
) -> Path:
    """Write `tensors` (made contiguous, on CPU) to `path` atomically, mode `0666 & ~umask`."""
    from safetensors.torch import save_file

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        data = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        save_file(data, str(tmp), metadata=metadata)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path
