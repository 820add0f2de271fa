"""The VQGAN+CLIP optimisation: first-stage latents steered toward weighted CLIP targets.

Crowson et al., "VQGAN-CLIP" (ECCV 2022): start from the latents of an init image (or of smooth
noise), decode through the quantizer (straight-through, so the gradient reaches the latents;
for Gumbel first stages these latents are the code logits), score random augmented cutouts of
the image with CLIP against the prompts (spherical distance), and take Adam steps on the
latents. `clip_loss_first` / `clip_loss_last` are measured on one fixed, seeded set of cutouts,
before the first and after the last update, so the two numbers are comparable.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taming.clip.cutouts import Cutouts
from taming.clip.perceptor import ClipPerceptor
from taming.clip.prompts import weighted_loss
from taming.config import ConfigError

logger = logging.getLogger(__name__)

__all__ = ["GuideSettings", "GuideStep", "first_stage_of", "guide_latents", "latent_factor"]


@dataclass(frozen=True)
class GuideSettings:
    """Settings of one guidance run.

    Args:
        steps: Adam updates.
        size: image size `(H, W)`, multiples of the first stage's factor.
        lr: Adam step size relative to the initial latents' standard deviation.
        seed: seeds the init noise, the training cutouts and (seed + 1) the fixed eval cutouts.
        cutouts: cutouts per step; eval_cutouts: size of the fixed scoring set.
        cut_pow: exponent of the cutout size draw.
        quantize: pass the latents through the quantizer (straight-through); False decodes the
            continuous latents.
        frame_every: also decode the image after every this many updates (0: only the last).
    """

    steps: int = 100
    size: tuple[int, int] = (256, 256)
    lr: float = 0.05
    seed: int = 0
    cutouts: int = 32
    eval_cutouts: int = 32
    cut_pow: float = 1.0
    quantize: bool = True
    frame_every: int = 0


@dataclass
class GuideStep:
    """One point of the run: `step` updates done, the image `(1, 3, H, W)` in [-1, 1].

    `image` is None on steps that are neither frames (`frame_every`) nor the last.
    """

    step: int
    image: Tensor | None
    loss: float  # training loss of this step's cutouts (nan at step 0)
    eval_loss: float | None = None  # on the fixed cutouts (first and last step only)


def first_stage_of(model: nn.Module) -> nn.Module:
    """The first stage of `model`: itself, or a transformer's `first_stage_model`."""
    stage = getattr(model, "first_stage_model", model)
    for name in ("encode_to_prequant", "quantize", "decode"):
        if not hasattr(stage, name):
            raise ConfigError(
                f"{type(model).__name__} is not a first stage (no {name}); pass a VQGAN run"
            )
    return stage


@torch.no_grad()
def latent_factor(stage: nn.Module, device: torch.device) -> int:
    """Downsampling factor of a first stage, measured on a small input."""
    probe = 64
    z = stage.encode_to_prequant(torch.zeros(1, 3, probe, probe, device=device))
    return probe // int(z.shape[-1])


def _quantize(stage: nn.Module, z: Tensor) -> Tensor:
    """Quantised latents with a gradient to `z`.

    Most quantizers are straight-through in eval mode. One whose eval output has no gradient
    (Gumbel's deterministic argmax) is run in training mode for this call: its Gumbel-softmax
    sample then carries the gradient (EMA codebooks never get here, so none is updated).
    """
    quant = stage.quantize(z)[0]
    if quant.requires_grad or not (z.requires_grad and torch.is_grad_enabled()):
        return quant
    stage.quantize.train()
    try:
        return stage.quantize(z)[0]
    finally:
        stage.quantize.eval()


def _decode(stage: nn.Module, z: Tensor, quantize: bool) -> Tensor:
    quant = _quantize(stage, z) if quantize else z
    return stage.decode(quant).clamp(-1.0, 1.0)  # (1, 3, H, W)


def _init_image(size: tuple[int, int], f: int, generator: torch.Generator) -> Tensor:
    """Smooth noise `(1, 3, H, W)` in [-1, 1]: one random colour per latent cell, upsampled."""
    H, W = size
    cells = torch.rand(1, 3, max(1, H // f), max(1, W // f), generator=generator) * 2 - 1
    return F.interpolate(cells, size=(H, W), mode="bicubic", align_corners=False).clamp(-1, 1)


def guide_latents(
    model: nn.Module,
    perceptor: ClipPerceptor,
    targets: Tensor,
    weights: Tensor,
    settings: GuideSettings = GuideSettings(),
    init: Tensor | None = None,
) -> Iterator[GuideStep]:
    """Run the optimisation; yields step 0 (before any update) and every step after it.

    Args:
        model: a first stage (or a model with `first_stage_model`), frozen here.
        perceptor: the CLIP scorer.
        targets: prompt embeddings `(T, D)` (texts and images); weights: `(T,)`, negative
            pushes away.
        settings: see `GuideSettings`.
        init: init image `(1, 3, H, W)` in [-1, 1] at `settings.size` (None: smooth noise).
    """
    stage = first_stage_of(model).eval().requires_grad_(False)
    perceptor.requires_grad_(False)
    device = perceptor.mean.device
    stage.to(device)
    H, W = settings.size
    g = torch.Generator().manual_seed(settings.seed)
    if init is None:
        init = _init_image((H, W), latent_factor(stage, device), g)
    if tuple(init.shape[-2:]) != (H, W):
        raise ConfigError(f"init image is {tuple(init.shape[-2:])}, expected {(H, W)}")
    with torch.no_grad():
        z0 = stage.encode_to_prequant(init.to(device).float())  # (1, D, h, w)
    z = z0.clone().requires_grad_(True)
    scale = float(z0.std()) if z0.numel() > 1 and float(z0.std()) > 0 else 1.0
    opt = torch.optim.Adam([z], lr=settings.lr * scale)
    cut = Cutouts(perceptor.input_size, settings.cutouts, cut_pow=settings.cut_pow)
    eval_cut = Cutouts(perceptor.input_size, settings.eval_cutouts, cut_pow=settings.cut_pow)
    eval_params = eval_cut.draw((H, W), torch.Generator().manual_seed(settings.seed + 1))
    targets, weights = targets.to(device), weights.to(device)

    @torch.no_grad()
    def score(image: Tensor) -> float:
        embeds = perceptor.encode_image(eval_cut.apply(image, eval_params))
        return float(weighted_loss(embeds, targets, weights))

    with torch.no_grad():
        image = _decode(stage, z, settings.quantize)
    yield GuideStep(0, image, math.nan, score(image))
    for step in range(1, settings.steps + 1):
        opt.zero_grad(set_to_none=True)
        image = _decode(stage, z, settings.quantize)
        loss = weighted_loss(perceptor.encode_image(cut(image, g)), targets, weights)
        loss.backward()
        opt.step()
        if not torch.isfinite(loss):
            raise ConfigError(f"CLIP loss is {float(loss)} at step {step}; lower --lr")
        last = step == settings.steps
        if not (last or (settings.frame_every and step % settings.frame_every == 0)):
            yield GuideStep(step, None, float(loss.detach()))
            continue
        with torch.no_grad():
            image = _decode(stage, z, settings.quantize)  # after this update
        yield GuideStep(step, image, float(loss.detach()), score(image) if last else None)
