"""The model registry: `taming.create_model`, weight lookup and `taming models`."""

from __future__ import annotations

import shutil

import pytest
import torch

import taming
from taming.cli import main
from taming.registry import REGISTRY, MissingWeightsError


def test_registry_has_every_row_of_the_model_table():
    names = set(REGISTRY)
    for n in ("ffhq_transformer", "celebahq_transformer", "ade20k_transformer",
              "coco_transformer", "cin_transformer", "faceshq_transformer", "sflckr",
              "drin_transformer", "vqgan_imagenet_f16_1024", "vqgan_imagenet_f16_16384",
              "vqgan_gumbel_f8", "vq-f8", "vq-f8-n256", "dalle_dvae"):  # fmt: skip
        assert n in names
    assert all(e.url.startswith("https://") and e.files for e in REGISTRY.values())


def test_missing_weights_fail_fast_with_url_and_place(tmp_path, monkeypatch):
    monkeypatch.setenv("TAMING_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError) as e:
        taming.create_model("vqgan_imagenet_f16_16384", pretrained=True)
    msg = str(e.value)
    assert "https://heibox.uni-heidelberg.de/d/a7530b09fed84f80a887/" in msg
    assert str(tmp_path / "vqgan_imagenet_f16_16384" / "ckpts" / "last.ckpt") in msg
    with pytest.raises(MissingWeightsError, match="cdn.openai.com/dall-e/encoder.pkl"):
        taming.create_model("dalle_dvae", pretrained=True, path=tmp_path / "elsewhere")


def test_unknown_name_suggests_close_ones():
    with pytest.raises(taming.config.ConfigError, match="did you mean vq-f8"):
        taming.create_model("vq_f8")


def test_pretrained_loads_a_release_folder(compat_dir, tmp_path, monkeypatch, capsys):
    # the fixture VQModel laid out as a release folder (configs/model.yaml + ckpts/last.ckpt)
    release = tmp_path / "vqgan_imagenet_f16_1024"
    (release / "configs").mkdir(parents=True)
    (release / "ckpts").mkdir()
    shutil.copy(compat_dir / "vqmodel" / "config.yaml", release / "configs" / "model.yaml")
    shutil.copy(compat_dir / "vqmodel" / "model.ckpt", release / "ckpts" / "last.ckpt")
    monkeypatch.setenv("TAMING_HOME", str(tmp_path))
    model = taming.create_model("vqgan_imagenet_f16_1024", pretrained=True)
    ref = taming.load(compat_dir / "vqmodel")
    x = torch.load(compat_dir / "vqmodel" / "inputs.pt")["x"]
    with torch.no_grad():
        assert torch.equal(model(x)[0], ref(x)[0])
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    assert "vqgan_imagenet_f16_1024" in out and "1 of " in out
    line = next(ln for ln in out.splitlines() if ln.startswith("vqgan_imagenet_f16_1024 "))
    assert "present" in line


def test_architecture_without_weights():
    model = taming.create_model("vq-f8-n256")
    assert model.n_embed == 256 and model.quant_conv.weight.shape == (4, 4, 1, 1)
    with pytest.raises(taming.config.ConfigError, match="release config"):
        taming.create_model("cin_transformer")


def test_pretrained_latent_diffusion_entry_converts_on_load(tmp_path, monkeypatch):
    # the vq-f8 entry with a small architecture, so a random ldm checkpoint stays small
    import dataclasses

    import yaml

    from taming import registry
    from test_convert import _ldm_source

    folder, dd, sd = _ldm_source(tmp_path, torch.Generator().manual_seed(0))
    params = yaml.safe_load((folder / "config.yaml").read_text())["model"]["params"]
    small = {"target": "taming.models.vqgan.VQModel", "params": params}
    entry = dataclasses.replace(REGISTRY["vq-f8"], config=small)
    monkeypatch.setitem(registry.REGISTRY, "vq-f8", entry)
    model = taming.create_model("vq-f8", pretrained=True, path=folder)
    assert torch.equal(model.quantize.embedding.weight, sd["quantize.embedding.weight"])
    assert torch.equal(model.decoder.conv_out.weight, sd["decoder.conv_out.weight"])
