"""Locate and read the pretrained weights LPIPS needs, without any network access.

LPIPS ("The Unreasonable Effectiveness of Deep Features as a Perceptual Metric", Zhang et al.,
2018) needs two files:

* the ImageNet VGG16 weights of torchvision (`vgg16-397923af.pth`, keys
  `features.{i}.weight/bias` + `classifier.*`), or a safetensors copy (`vgg16.safetensors`);
* the LPIPS v0.1 linear heads for VGG (`vgg.pth`, keys `lin{0..4}.model.1.weight`).

Nothing is ever downloaded. Each file is looked up, in order, at:

VGG16 trunk
    1. an explicit path argument (if given, it must exist: no fallback);
    2. `$TAMING_HOME` (default `~/.cache/taming`): `vgg16-397923af.pth`, `vgg16.safetensors`;
    3. the torch hub cache: `torch.hub.get_dir()/checkpoints/vgg16-397923af.pth`.

LPIPS linear heads
    1. an explicit path argument (if given, it must exist: no fallback);
    2. `$TAMING_HOME`: `lpips/vgg.pth`, `vgg_lpips.pth`;
    3. the original project's CWD-relative `taming/modules/autoencoder/lpips/vgg.pth`;
    4. an installed `lpips` package: `<lpips>/weights/v0.1/vgg.pth`;
    5. torchmetrics' bundled copy: `<torchmetrics>/functional/image/lpips_models/vgg.pth`.

A file named `vgg16-397923af.pth` (wherever found, explicit paths included) must have a sha256
starting with `397923af` (torchvision's naming convention); the check runs once per file per
process; other names are not checked. If nothing is found, a `WeightsNotFoundError` lists
every place looked, the download URL and where to put the file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

logger = logging.getLogger(__name__)

__all__ = [
    "LPIPS_LIN_FILENAMES",
    "LPIPS_LIN_URL",
    "VGG16_FILENAMES",
    "VGG16_SHA256_PREFIX",
    "VGG16_URL",
    "WeightsChecksumError",
    "WeightsNotFoundError",
    "load_lpips_lin_state_dict",
    "load_vgg16_features",
    "lpips_lin_search_paths",
    "resolve_lpips_lin_weights",
    "resolve_vgg16_weights",
    "taming_home",
    "vgg16_search_paths",
    "verify_sha256_prefix",
]

VGG16_URL = "https://download.pytorch.org/models/vgg16-397923af.pth"
VGG16_FILENAMES = ("vgg16-397923af.pth", "vgg16.safetensors")
VGG16_SHA256_PREFIX = "397923af"
# Where the original project downloaded its LPIPS heads from (for the error message only).
LPIPS_LIN_URL = "https://heibox.uni-heidelberg.de/f/607503859c864bc1b30b/?dl=1"
LPIPS_LIN_FILENAMES = ("lpips/vgg.pth", "vgg_lpips.pth")
ORIGINAL_LPIPS_PATH = Path("taming/modules/autoencoder/lpips/vgg.pth")

# Conv indices of torchvision's VGG16 `features` (13 convs, ReLU after each, 5 max-pools).
VGG16_CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)
LPIPS_LIN_KEYS = tuple(f"lin{k}.model.1.weight" for k in range(5))

_SHA256_CACHE: dict[tuple[str, int, int], str] = {}


class WeightsNotFoundError(FileNotFoundError):
    """Pretrained weights are not on disk; the message says where they were looked for.

    Attributes:
        what: which weights (human-readable).
        searched: every path looked at, in order.
    """

    def __init__(self, message: str, what: str, searched: Iterable[Path]) -> None:
        super().__init__(message)
        self.what = what
        self.searched = list(searched)


class WeightsChecksumError(ValueError):
    """A weights file carries a hash in its name that does not match its content."""


def taming_home() -> Path:
    """`$TAMING_HOME` if set, else `~/.cache/taming` (the folder for user-supplied weights)."""
    env = os.environ.get("TAMING_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "taming"


def _hub_checkpoint_dir() -> Path:
    """torch hub's checkpoint folder (respects `$TORCH_HOME` and `torch.hub.set_dir`)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def _package_dir(name: str) -> Path | None:
    """Folder of an installed top-level package, found without importing it."""
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def vgg16_search_paths(explicit: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Candidate VGG16 weight files in lookup order, as `(path, where)` pairs."""
    if explicit is not None:
        return [(Path(explicit).expanduser(), "explicit path argument")]
    home = taming_home()
    src = "$TAMING_HOME" if os.environ.get("TAMING_HOME") else "~/.cache/taming"
    out = [(home / name, src) for name in VGG16_FILENAMES]
    out.append((_hub_checkpoint_dir() / VGG16_FILENAMES[0], "torch hub cache"))
    return out


def lpips_lin_search_paths(explicit: str | os.PathLike | None = None) -> list[tuple[Path, str]]:
    """Candidate LPIPS linear-head files in lookup order, as `(path, where)` pairs."""
    if explicit is not None:
        return [(Path(explicit).expanduser(), "explicit path argument")]
    home = taming_home()
    src = "$TAMING_HOME" if os.environ.get("TAMING_HOME") else "~/.cache/taming"
    out = [(home / name, src) for name in LPIPS_LIN_FILENAMES]
    out.append((Path.cwd() / ORIGINAL_LPIPS_PATH, "original project's CWD-relative location"))
    lpips_dir = _package_dir("lpips")
    if lpips_dir is not None:
        out.append((lpips_dir / "weights" / "v0.1" / "vgg.pth", "installed lpips package"))
    tm_dir = _package_dir("torchmetrics")
    if tm_dir is not None:
        out.append(
            (tm_dir / "functional" / "image" / "lpips_models" / "vgg.pth", "torchmetrics bundle")
        )
    return out


def _sha256(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    digest = _SHA256_CACHE.get(key)
    if digest is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        digest = _SHA256_CACHE[key] = h.hexdigest()
    return digest


def verify_sha256_prefix(path: str | os.PathLike, prefix: str) -> None:
    """Check that a file's sha256 starts with `prefix` (torchvision's `name-<prefix>.pth`).

    The digest is cached per (path, size, mtime) for the life of the process.

    Raises:
        WeightsChecksumError: the content does not match.
    """
    path = Path(path)
    digest = _sha256(path)
    if not digest.startswith(prefix):
        raise WeightsChecksumError(
            f"{path}: sha256 {digest[:16]}... does not start with {prefix} as its name "
            f"promises; the file is corrupt or not the expected one. Delete it and download "
            f"it again from {VGG16_URL}."
        )


def _format_searched(found: list[tuple[Path, str]]) -> str:
    return "\n".join(f"  - {p}  ({where})" for p, where in found)


def resolve_vgg16_weights(path: str | os.PathLike | None = None) -> Path:
    """Path of the VGG16 ImageNet weights (see the module docstring for the lookup order).

    Raises:
        WeightsNotFoundError: no candidate exists; the message lists them all.
        WeightsChecksumError: `vgg16-397923af.pth` has the wrong content.
    """
    candidates = vgg16_search_paths(path)
    for p, where in candidates:
        if p.is_file():
            logger.debug("VGG16 weights: %s (%s)", p, where)
            if p.name == VGG16_FILENAMES[0]:
                verify_sha256_prefix(p, VGG16_SHA256_PREFIX)
            return p
    target = taming_home() / VGG16_FILENAMES[0]
    if path is not None:
        head = f"VGG16 weights for LPIPS not found at the explicit path {candidates[0][0]}."
    else:
        head = "VGG16 (ImageNet) weights for LPIPS not found. Looked in, in order:"
    msg = (
        f"{head}\n{_format_searched(candidates)}\n"
        "Nothing is downloaded automatically. Download torchvision's VGG16 weights from\n"
        f"  {VGG16_URL}\n"
        f"and put the file at {target} (or in $TAMING_HOME, or in the torch hub cache "
        f"{_hub_checkpoint_dir()}), or pass its path as `lpips_vgg_weights:` in the loss "
        "params / `LPIPS(vgg_weights=...)`. A safetensors copy named `vgg16.safetensors` "
        "works too.\n"
        "To train without the perceptual loss, set `perceptual_weight: 0` in the loss params "
        "(no weights needed)."
    )
    raise WeightsNotFoundError(msg, "VGG16 ImageNet weights", [p for p, _ in candidates])


def resolve_lpips_lin_weights(path: str | os.PathLike | None = None) -> Path:
    """Path of the LPIPS v0.1 VGG linear heads (see the module docstring for the lookup order).

    Raises:
        WeightsNotFoundError: no candidate exists; the message lists them all.
    """
    candidates = lpips_lin_search_paths(path)
    for p, where in candidates:
        if p.is_file():
            logger.debug("LPIPS linear heads: %s (%s)", p, where)
            return p
    target = taming_home() / LPIPS_LIN_FILENAMES[0]
    if path is not None:
        head = f"LPIPS linear-head weights not found at the explicit path {candidates[0][0]}."
    else:
        head = "LPIPS linear-head weights (v0.1, VGG) not found. Looked in, in order:"
    msg = (
        f"{head}\n{_format_searched(candidates)}\n"
        "Nothing is downloaded automatically. These weights ship with the `torchmetrics` and "
        "`lpips` packages (installing either makes them findable); the original project "
        f"downloaded them from\n  {LPIPS_LIN_URL}\n"
        f"Put the file (keys lin0..lin4.model.1.weight) at {target}, or pass its path as "
        "`lpips_lin_weights:` in the loss params / `LPIPS(lin_weights=...)`.\n"
        "To train without the perceptual loss, set `perceptual_weight: 0` in the loss params "
        "(no weights needed)."
    )
    raise WeightsNotFoundError(msg, "LPIPS linear heads", [p for p, _ in candidates])


def _read_tensors(path: Path, keep: tuple[str, ...] | None = None) -> dict[str, torch.Tensor]:
    """Tensors of a `.safetensors` or pickled (`weights_only`) state dict, optionally filtered
    to keys starting with one of `keep` (safetensors then reads only those)."""
    if path.suffix == ".safetensors":
        from safetensors import safe_open

        out = {}
        with safe_open(str(path), framework="pt", device="cpu") as f:
            for k in f.keys():  # noqa: SIM118 (safe_open is not a Mapping)
                if keep is None or k.startswith(keep):
                    out[k] = f.get_tensor(k)
        return out
    try:  # zip-format files can be memory-mapped, so unused entries (the classifier) stay on disk
        obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # legacy (pre-zip) serialisation, e.g. torchvision's 2017 files
        obj = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        obj = obj["state_dict"]
    if not isinstance(obj, Mapping):
        raise ValueError(f"{path}: expected a state dict, found {type(obj).__name__}")
    return {
        k: v
        for k, v in obj.items()
        if isinstance(v, torch.Tensor) and (keep is None or k.startswith(keep))
    }


def load_vgg16_features(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read VGG16 conv weights as `{"{idx}.weight": ..., "{idx}.bias": ...}` (features indices).

    Accepted layouts: torchvision's `features.{i}.*` (classifier keys ignored), a bare
    `features` state dict `{i}.*`, and LPIPS' own `net.slice{k}.{i}.*` (optionally under
    `perceptual_loss.` / `loss.perceptual_loss.`).

    Raises:
        ValueError: some of the 13 convs' weights or biases are missing.
    """
    path = Path(path)
    raw = _read_tensors(path)
    pattern = re.compile(r"^(?:.*\bnet\.slice\d\.|features\.)?(\d+)\.(weight|bias)$")
    out: dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        m = pattern.match(k)
        if m is not None and int(m.group(1)) in VGG16_CONV_INDICES:
            out[f"{m.group(1)}.{m.group(2)}"] = v
    need = [f"{i}.{p}" for i in VGG16_CONV_INDICES for p in ("weight", "bias")]
    missing = [k for k in need if k not in out]
    if missing:
        raise ValueError(
            f"{path} is not a VGG16 weights file: missing conv tensors "
            f"{', '.join('features.' + k for k in missing[:6])}"
            + (f" (+{len(missing) - 6} more)" if len(missing) > 6 else "")
        )
    return out


def load_lpips_lin_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read the LPIPS linear heads as `{"lin{k}.model.1.weight": (1, C_k, 1, 1)}`.

    Keys may carry a prefix (e.g. `loss.perceptual_loss.` in a full checkpoint).

    Raises:
        ValueError: some of the five heads are missing.
    """
    path = Path(path)
    raw = _read_tensors(path)
    out: dict[str, torch.Tensor] = {}
    for k, v in raw.items():
        for want in LPIPS_LIN_KEYS:
            if k == want or k.endswith("." + want):
                out[want] = v
    missing = [k for k in LPIPS_LIN_KEYS if k not in out]
    if missing:
        raise ValueError(f"{path} is not an LPIPS linear-head file: missing {', '.join(missing)}")
    return out
