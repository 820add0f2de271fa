"""The pretrained models of the original README as a registry, in the style of timm's
`create_model`:

    model = taming.create_model("vqgan_imagenet_f16_16384", pretrained=True)

One entry per row of the seed's model table (every transformer and first stage), plus the
latent-diffusion VQ-f8 autoencoders (`vq-f8`, `vq-f8-n256`) and OpenAI's DALL-E dVAE. Each
entry records the architecture, the files of its release and where the weights are published
(`url`, for the user; nothing is downloaded, ever). Weights are looked up in `path` (argument),
else in `$TAMING_HOME/<name>/`, else in `~/.cache/taming/<name>/`; a missing file fails at
once with the URL and the exact place to put it. No sha256 is published for these releases, so
none is checked (an entry's `sha256` maps file -> digest where one is).
"""

from __future__ import annotations

import difflib
import glob
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taming.config import ConfigError

__all__ = [
    "REGISTRY",
    "MissingWeightsError",
    "ModelEntry",
    "create_model",
    "list_models",
    "locate",
    "weights_root",
]


class MissingWeightsError(FileNotFoundError):
    """A registered model's weights are not on disk (the message says where to put them)."""


def _dd(ch_mult, attn, z=256, in_ch=3, out_ch=3) -> dict[str, Any]:
    return {
        "double_z": False, "z_channels": z, "resolution": 256, "in_channels": in_ch,
        "out_ch": out_ch, "ch": 128, "ch_mult": list(ch_mult), "num_res_blocks": 2,
        "attn_resolutions": list(attn), "dropout": 0.0,
    }  # fmt: skip


def _vqgan(n_embed: int, embed_dim: int = 256, **dd: Any) -> dict[str, Any]:
    params = {"embed_dim": embed_dim, "n_embed": n_embed, "lossconfig": None}
    params["ddconfig"] = _dd(**{"ch_mult": (1, 1, 2, 2, 4), "attn": (16,), **dd})
    return {"target": "taming.models.vqgan.VQModel", "params": params}


_RUN = ("configs/*-project.yaml", "checkpoints/last.ckpt")  # original run folders
_RELEASE = ("configs/model.yaml", "ckpts/last.ckpt")  # f16 / Gumbel VQGAN release folders


@dataclass(frozen=True)
class ModelEntry:
    """One released model.

    Attributes:
        name: registry name (also the folder name under the weights root).
        kind: `first_stage` or `transformer`.
        family: file layout: `taming` (release folder), `ldm` (model.ckpt), `dalle` (pickles).
        url: where the weights are published.
        files: files of the release, relative to its folder (globs allowed).
        config: `{target, params}` of the architecture, where the registry can build it alone.
        arch: short architecture summary (the release's config is authoritative).
        description: the README's row.
        release: the release folder's original name.
        sha256: published digests, file -> hex.
    """

    name: str
    kind: str
    family: str
    url: str
    files: tuple[str, ...]
    config: dict[str, Any] | None = None
    arch: str = ""
    description: str = ""
    release: str = ""
    sha256: dict[str, str] = field(default_factory=dict)


_K00 = "https://k00.fr/"
_HEI = "https://heibox.uni-heidelberg.de/d/"
_E = ModelEntry
_ENTRIES = [
    _E("ffhq_transformer", "transformer", "taming", _K00 + "yndvfu95", _RUN,
       arch="Net2NetTransformer, unconditional; GPT V 1024, T 256, 24 layers, 16 heads, d 1664",
       description="FFHQ (f=16), FID 9.6", release="2021-04-23T18-19-01_ffhq_transformer"),
    _E("celebahq_transformer", "transformer", "taming", _K00 + "2xkmielf", _RUN,
       arch="Net2NetTransformer, unconditional; GPT V 1024, T 256, 24 layers, 16 heads, d 1664",
       description="CelebA-HQ (f=16), FID 10.2",
       release="2021-04-23T18-11-19_celebahq_transformer"),
    _E("ade20k_transformer", "transformer", "taming", _K00 + "ot46cksa", _RUN,
       arch="Net2NetTransformer, segmentation-conditioned (VQSegmentationModel, 151 labels)",
       description="ADE20K (f=16), FID 35.5 (val)",
       release="2020-11-20T21-45-44_ade20k_transformer"),
    _E("coco_transformer", "transformer", "taming", _K00 + "2zz6i2ce", _RUN,
       arch="Net2NetTransformer, segmentation-conditioned (VQSegmentationModel, 183 labels)",
       description="COCO-Stuff (f=16), FID 20.4 (val)",
       release="2021-01-20T16-04-20_coco_transformer"),
    _E("cin_transformer", "transformer", "taming", _K00 + "s511rwcv", _RUN,
       arch="Net2NetTransformer, class-conditional (Labelator, 1000 classes); first stage "
       "vqgan_imagenet_f16_16384; GPT V 16384, T 256, 48 layers, 24 heads, d 1536 (1.4B)",
       description="ImageNet cIN (f=16), FID 15.98/15.78/6.59/5.88/5.20",
       release="2021-04-03T19-39-50_cin_transformer"),
    _E("faceshq_transformer", "transformer", "taming", _K00 + "qqfl2do8", _RUN,
       arch="Net2NetTransformer, coord-conditioned; GPT V 1024, T 512, 24 layers, 16 heads, d 1024",
       description="FacesHQ (f=16)", release="2020-11-13T21-41-45_faceshq_transformer"),
    _E("sflckr", "transformer", "taming", _HEI + "73487ab6e5314cb5adba/", _RUN,
       arch="Net2NetTransformer, segmentation-conditioned (182 labels)",
       description="S-FLCKR (f=16)", release="2020-11-09T13-31-51_sflckr"),
    _E("drin_transformer", "transformer", "taming", _K00 + "39jcugc5", _RUN,
       arch="Net2NetTransformer, depth-conditioned (VQModel, 1 channel); GPT V 1024, T 512",
       description="D-RIN (f=16)", release="2020-11-20T12-54-32_drin_transformer"),
    _E("vqgan_imagenet_f16_1024", "first_stage", "taming", _HEI + "8088892a516d4e3baf92/",
       _RELEASE, _vqgan(1024), "VQModel f16, K 1024, D 256",
       "VQGAN ImageNet (f=16), 1024: rFID 10.54 (train) / 7.94 (val)"),
    _E("vqgan_imagenet_f16_16384", "first_stage", "taming", _HEI + "a7530b09fed84f80a887/",
       _RELEASE, _vqgan(16384), "VQModel f16, K 16384, D 256",
       "VQGAN ImageNet (f=16), 16384: rFID 7.41 / 4.98"),
    _E("vqgan_gumbel_f8", "first_stage", "taming", _HEI + "2e5662443a6b4307b470/", _RELEASE,
       {"target": "taming.models.vqgan.GumbelVQ",
        "params": {"n_embed": 8192, "embed_dim": 256, "kl_weight": 1e-8, "lossconfig": None,
                   "ddconfig": _dd((1, 1, 2, 4), (32,))}},
       "GumbelVQ f8, K 8192, D 256", "VQGAN OpenImages (f=8), 8192, Gumbel: rFID 3.24 / 1.49"),
    _E("imagenet_vqgan", "first_stage", "taming", _K00 + "u0j2dtac", _RUN, _vqgan(1024),
       "VQModel f16, K 1024 (imagenet_vqgan.yaml)", "first stage of D-RIN",
       "2020-09-23T17-56-33_imagenet_vqgan"),
    _E("imagenetdepth_vqgan", "first_stage", "taming", _K00 + "55rlxs6i", _RUN,
       _vqgan(1024, in_ch=1, out_ch=1), "VQModel f16, K 1024, 1-channel depth",
       "depth cond stage of D-RIN", "2020-11-03T15-34-24_imagenetdepth_vqgan"),
    _E("faceshq_vqgan", "first_stage", "taming", _K00 + "uxy5usa9", _RUN, _vqgan(1024),
       "VQModel f16, K 1024 (faceshq_vqgan.yaml)", "first stage of FacesHQ",
       "2020-11-09T13-33-36_faceshq_vqgan"),
    _E("vq-f8", "first_stage", "ldm", "https://ommer-lab.com/files/latent-diffusion/vq-f8.zip",
       ("model.ckpt",), _vqgan(16384, 4, ch_mult=(1, 2, 2, 4), attn=(32,), z=4),
       "latent-diffusion VQModel f8, K 16384, D 4",
       "VQGAN OpenImages (f=8), 16384 (latent-diffusion): val rFID 1.14"),
    _E("vq-f8-n256", "first_stage", "ldm",
       "https://ommer-lab.com/files/latent-diffusion/vq-f8-n256.zip", ("model.ckpt",),
       _vqgan(256, 4, ch_mult=(1, 2, 2, 4), attn=(32,), z=4),
       "latent-diffusion VQModel f8, K 256, D 4",
       "VQGAN OpenImages (f=8), 256 (latent-diffusion): val rFID 1.49"),
    _E("dalle_dvae", "first_stage", "dalle",
       "https://cdn.openai.com/dall-e/encoder.pkl and https://cdn.openai.com/dall-e/decoder.pkl",
       ("encoder.pkl", "decoder.pkl"),
       {"target": "taming.autoencoder.dalle.DalleVAE",
        "params": {"encoder": {"n_hid": 256, "vocab_size": 8192},
                   "decoder": {"n_init": 128, "n_hid": 256, "vocab_size": 8192}}},
       "DALL-E dVAE f8, 8192 codes", "DALL-E dVAE (f=8), 8192: rFID 33.88 / 32.01"),
]  # fmt: skip
REGISTRY: dict[str, ModelEntry] = {e.name: e for e in _ENTRIES}


def weights_root() -> Path:
    """`$TAMING_HOME`, else `~/.cache/taming`."""
    env = os.environ.get("TAMING_HOME")
    return Path(env).expanduser() if env else Path("~/.cache/taming").expanduser()


def _entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        close = difflib.get_close_matches(name, REGISTRY, n=3)
        hint = f" (did you mean {', '.join(close)}?)" if close else " (see `taming models`)"
        raise ConfigError(f"unknown model {name!r}{hint}")
    return REGISTRY[name]


def _present(folder: Path, pattern: str) -> Path | None:
    hits = sorted(glob.glob(str(folder / pattern)))
    return Path(hits[-1]) if hits else None


def locate(name: str, path: str | Path | None = None) -> tuple[Path, list[str]]:
    """The folder of `name`'s weights and the release files missing from it."""
    entry = _entry(name)
    folder = Path(path).expanduser() if path is not None else weights_root() / name
    missing = [f for f in entry.files if _present(folder, f) is None]
    return folder, missing


def _check_sha256(entry: ModelEntry, folder: Path) -> None:
    for rel, want in entry.sha256.items():
        digest = hashlib.sha256((folder / rel).read_bytes()).hexdigest()
        if digest != want:
            raise ConfigError(f"{folder / rel}: sha256 {digest} is not the published {want}")


def create_model(
    name: str, pretrained: bool = False, path: str | Path | None = None, device: str = "cpu"
):
    """Build a registered model; with `pretrained=True`, load its released weights.

    Args:
        name: registry name (`taming models` lists them).
        pretrained: load the weights from `path`, `$TAMING_HOME/<name>` or
            `~/.cache/taming/<name>`; missing files raise `MissingWeightsError` naming the
            URL and the place to put them.
        path: the release folder (overrides the weights root).
        device: where to put the model.
    """
    from taming.config import instantiate_from_config

    entry = _entry(name)
    if not pretrained:
        if entry.config is None:
            raise ConfigError(
                f"{name}: the architecture is given by its release config ({entry.arch}); "
                "use pretrained=True with the release folder"
            )
        return instantiate_from_config(entry.config, where=name).to(device).eval()
    folder, missing = locate(name, path)
    if missing:
        raise MissingWeightsError(
            f"{name}: weights not found: {', '.join(str(folder / m) for m in missing)}. "
            f"Download them from {entry.url} and put them in {folder} "
            "(or set $TAMING_HOME, or pass path=)"
        )
    _check_sha256(entry, folder)
    if entry.family == "taming":
        import taming

        return taming.load(folder, device=device)
    from taming.compat.checkpoint import load_state_dict_strict, read_state_dict

    if entry.family == "dalle":
        from taming.compat.dalle import convert_dalle

        converted = convert_dalle(folder)
    else:
        from taming.compat.ldm import convert_ldm

        ldm_cfg = {"target": "ldm.models.autoencoder.VQModel", "params": entry.config["params"]}
        sd = read_state_dict(folder / "model.ckpt")
        converted = convert_ldm(ldm_cfg, sd, str(folder / "model.ckpt"))
    model = instantiate_from_config(converted.config, where=name)
    load_state_dict_strict(model, converted.state_dict, source=str(folder))
    return model.to(device).eval()


def list_models(path_root: str | Path | None = None) -> list[dict[str, Any]]:
    """Each entry with its local folder and whether all its files are present."""
    rows = []
    for entry in REGISTRY.values():
        folder = Path(path_root) / entry.name if path_root else None
        where, missing = locate(entry.name, folder)
        rows.append({"name": entry.name, "kind": entry.kind, "family": entry.family,
                     "present": not missing, "folder": str(where), "url": entry.url,
                     "arch": entry.arch, "description": entry.description})  # fmt: skip
    return rows
