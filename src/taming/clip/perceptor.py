"""CLIP from Hugging Face `transformers`, loaded from local files only, as a frozen scorer.

CLIP (Radford et al., ICML 2021) maps images and texts to one embedding space. `load_clip`
reads a `CLIPModel` and its tokenizer from a folder written by `save_pretrained` (config.json,
model.safetensors, tokenizer files) or from the Hugging Face cache by repo id, always with
`local_files_only=True`: nothing is downloaded. A missing model raises `ClipError` with one line
naming what to fetch and where to put it.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import torch
from torch import Tensor, nn

from taming.config import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_CLIP", "ClipError", "ClipPerceptor", "load_clip"]

DEFAULT_CLIP = "openai/clip-vit-base-patch32"
# the image normalisation of OpenAI's CLIP (used when the folder has no preprocessor config)
_CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
_CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


class ClipError(ConfigError):
    """CLIP cannot be loaded (transformers missing, or no model files at the given place)."""


def _hub_cache() -> str:
    return os.environ.get("HF_HUB_CACHE") or os.path.join(
        os.environ.get("HF_HOME", os.path.expanduser("~/.cache/huggingface")), "hub"
    )


def _missing(spec: str) -> ClipError:
    return ClipError(
        f"CLIP model not found: {spec!r} (no download is tried). Fetch one where there is "
        f"internet, e.g. `hf download {DEFAULT_CLIP}` (into the Hugging Face cache "
        f"{_hub_cache()}), or `CLIPModel.from_pretrained(...)` + `CLIPTokenizer` and "
        "`save_pretrained(FOLDER)` for both, then pass --clip FOLDER or the repo id"
    )


class ClipPerceptor(nn.Module):
    """A frozen CLIP that embeds images in [-1, 1] and texts.

    Args:
        model: a `transformers.CLIPModel`.
        tokenizer: its tokenizer.
        mean, std: RGB normalisation of CLIP's pixel inputs (in [0, 1] units).
    """

    def __init__(
        self,
        model: nn.Module,
        tokenizer,
        mean: tuple[float, float, float] = _CLIP_MEAN,
        std: tuple[float, float, float] = _CLIP_STD,
    ) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        self.tokenizer = tokenizer
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)
        vision = model.config.vision_config
        self.input_size = int(vision.image_size)
        self.max_text_len = int(model.config.text_config.max_position_embeddings)

    @staticmethod
    def _features(out) -> Tensor:
        # transformers < 5 returns the projected features; 5.x an output whose pooler_output is
        return out if isinstance(out, Tensor) else out.pooler_output

    def encode_image(self, images: Tensor) -> Tensor:
        """Images `(N, 3, S, S)` in [-1, 1] at `input_size` -> embeddings `(N, D)`."""
        x = ((images + 1.0) / 2.0 - self.mean) / self.std
        return self._features(self.model.get_image_features(pixel_values=x))

    @torch.no_grad()
    def encode_text(self, texts: list[str]) -> Tensor:
        """Texts -> embeddings `(T, D)`."""
        device = self.mean.device
        tokens = self.tokenizer(
            list(texts),
            padding=True,
            truncation=True,
            max_length=self.max_text_len,
            return_tensors="pt",
        )
        tokens = {k: v.to(device) for k, v in tokens.items()}
        return self._features(self.model.get_text_features(**tokens))


def _normalisation(folder: Path | None) -> tuple[tuple, tuple]:
    cfg = folder / "preprocessor_config.json" if folder is not None else None
    if cfg is not None and cfg.is_file():
        data = json.loads(cfg.read_text())
        if "image_mean" in data and "image_std" in data:
            return tuple(data["image_mean"]), tuple(data["image_std"])
    return _CLIP_MEAN, _CLIP_STD


def load_clip(spec: str | Path = DEFAULT_CLIP, device: str | torch.device = "cpu") -> ClipPerceptor:
    """CLIP from a `save_pretrained` folder or a Hugging Face cache repo id (never downloads)."""
    try:
        from transformers import AutoTokenizer, CLIPModel
    except ImportError:
        raise ClipError(
            "CLIP guidance needs Hugging Face transformers: pip install 'taming[clip]'"
        ) from None
    spec = str(spec)
    folder = Path(spec).expanduser()
    is_dir = folder.is_dir()
    if not is_dir and (folder.exists() or spec.startswith((".", "/", "~")) or spec.count("/") > 1):
        raise _missing(spec)  # a path, not a repo id, and no such folder
    source = str(folder) if is_dir else spec
    try:
        model = CLIPModel.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError) as e:
        logger.debug("CLIPModel.from_pretrained(%s): %s", source, e)
        raise _missing(spec) from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, local_files_only=True)
    except (OSError, ValueError, TypeError) as e:
        raise ClipError(
            f"{spec}: CLIP weights found but no tokenizer ({type(e).__name__}); save the "
            "tokenizer there too (`CLIPTokenizer.from_pretrained(...).save_pretrained(FOLDER)`)"
        ) from None
    mean, std = _normalisation(folder if is_dir else None)
    logger.info("CLIP from %s (input %d px)", source, int(model.config.vision_config.image_size))
    return ClipPerceptor(model, tokenizer, mean, std).to(device)
