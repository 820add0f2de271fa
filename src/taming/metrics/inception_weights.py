"""Find the FID Inception-v3 weights on disk (never downloaded), without importing torch.

FID (Heusel et al., 2017), KID (Binkowski et al., 2018) and IS (Salimans et al., 2016) are
defined on the 2015-12-05 TensorFlow Inception-v3 graph. Two PyTorch ports of that graph are
in common use, with the same parameter names and values:

* torch-fidelity: `weights-inception-2015-12-05-6726825d.pth` (`TORCH_FIDELITY_URL`);
* pytorch-fid: `pt_inception-2015-12-05-6726825d.pth` (`PYTORCH_FID_URL`).

Either is looked up, in order, at

1. an explicit path (`--inception-weights PATH`; if given it must exist: no fallback);
2. `$TAMING_HOME` (default `~/.cache/taming`), both names;
3. the torch hub cache `~/.cache/torch/hub/checkpoints/` (`$TORCH_HOME/hub/checkpoints`), where
   torch-fidelity and pytorch-fid put their downloads.

This module imports no torch, so a missing file is reported (one line: the file names, the URL,
where to put it) before any heavy import, in well under a second.
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

__all__ = [
    "INCEPTION_FILENAMES",
    "PYTORCH_FID_URL",
    "TORCH_FIDELITY_URL",
    "InceptionWeightsNotFoundError",
    "inception_search_paths",
    "resolve_inception_weights",
    "taming_home",
    "weights_digest",
]

TORCH_FIDELITY_FILE = "weights-inception-2015-12-05-6726825d.pth"
PYTORCH_FID_FILE = "pt_inception-2015-12-05-6726825d.pth"
INCEPTION_FILENAMES = (TORCH_FIDELITY_FILE, PYTORCH_FID_FILE)
TORCH_FIDELITY_URL = (
    "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + TORCH_FIDELITY_FILE
)
PYTORCH_FID_URL = (
    "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/" + PYTORCH_FID_FILE
)

_DIGESTS: dict[tuple[str, int, int], str] = {}


class InceptionWeightsNotFoundError(FileNotFoundError):
    """The FID Inception weights are not on disk; the message says which file, where from and
    where to put it. `searched` lists every path looked at."""

    def __init__(self, message: str, searched: list[Path]) -> None:
        super().__init__(message)
        self.searched = searched


def taming_home() -> Path:
    env = os.environ.get("TAMING_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "taming"


def _hub_checkpoints() -> Path:
    """torch hub's checkpoint folder, computed as torch does (torch's own answer if loaded)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    torch_home = os.environ.get("TORCH_HOME")
    if torch_home:
        base = Path(torch_home).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "torch"
    return base / "hub" / "checkpoints"


def inception_search_paths(explicit: str | os.PathLike | None = None) -> list[Path]:
    """Candidate weight files in lookup order."""
    if explicit is not None:
        return [Path(explicit).expanduser()]
    dirs = (taming_home(), _hub_checkpoints())
    return [d / name for d in dirs for name in INCEPTION_FILENAMES]


def resolve_inception_weights(path: str | os.PathLike | None = None) -> Path:
    """Path of the FID Inception-v3 weights (lookup order in the module docstring).

    Raises:
        InceptionWeightsNotFoundError: nothing found (an explicit path is not searched beyond).
    """
    candidates = inception_search_paths(path)
    for p in candidates:
        if p.is_file():
            return p
    if path is not None:
        msg = (
            f"Inception weights file not found: {candidates[0]} (expected torch-fidelity's "
            f"{TORCH_FIDELITY_FILE} or pytorch-fid's {PYTORCH_FID_FILE}; get it from "
            f"{TORCH_FIDELITY_URL})"
        )
    else:
        msg = (
            f"FID Inception weights not found: {TORCH_FIDELITY_FILE} (or pytorch-fid's "
            f"{PYTORCH_FID_FILE}); download {TORCH_FIDELITY_URL} and put it in "
            f"{taming_home()} ($TAMING_HOME) or {_hub_checkpoints()}, "
            "or pass --inception-weights PATH"
        )
    raise InceptionWeightsNotFoundError(msg, candidates)


def weights_digest(path: str | os.PathLike) -> str:
    """sha256 (hex) of a weights file, cached per (path, size, mtime) for this process."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), st.st_size, st.st_mtime_ns)
    digest = _DIGESTS.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 22), b""):
                h.update(chunk)
        digest = _DIGESTS[key] = h.hexdigest()
    return digest
