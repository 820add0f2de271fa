"""CLIP guidance of a first stage ("VQGAN+CLIP"): optimise latents toward text/image prompts.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision"
(ICML 2021) give the image/text embedding; Crowson et al., "VQGAN-CLIP" (ECCV 2022) steer a
VQGAN's latents with it through random cutouts and a spherical distance. This package is
image-level code above `autoencoder/`; only `taming clip` imports it. CLIP itself comes from
Hugging Face `transformers` (the optional extra `clip`), loaded from local files only.

    from taming.clip import load_clip, parse_prompts, guide_latents, GuideSettings
"""

from taming.clip.cutouts import CutoutParams, Cutouts
from taming.clip.guide import GuideSettings, GuideStep, guide_latents
from taming.clip.perceptor import ClipError, ClipPerceptor, load_clip
from taming.clip.prompts import Prompt, parse_image_prompt, parse_prompts, spherical_distance

__all__ = [
    "ClipError",
    "ClipPerceptor",
    "CutoutParams",
    "Cutouts",
    "GuideSettings",
    "GuideStep",
    "Prompt",
    "guide_latents",
    "load_clip",
    "parse_image_prompt",
    "parse_prompts",
    "spherical_distance",
]
