"""`save_pretrained` / `from_pretrained` on local folders (config.yaml + model.safetensors)."""

from __future__ import annotations

import pytest
import torch
import yaml

import taming
from taming.autoencoder import GumbelVQ, VQModel
from taming.autoencoder.dalle import DalleVAE
from taming.cond import Net2NetTransformer
from taming.config import ConfigError


def test_vqmodel_round_trip(compat_dir, tmp_path):
    src = compat_dir / "vqmodel"
    model = taming.load(src)
    folder = model.save_pretrained(tmp_path / "vq")
    cfg = yaml.safe_load((folder / "config.yaml").read_text())["model"]
    assert cfg["target"] == "taming.autoencoder.vqmodel.VQModel"
    assert cfg["params"].get("ckpt_path") is None and cfg["params"]["n_embed"] == 64
    again = VQModel.from_pretrained(folder)
    x = torch.load(src / "inputs.pt")["x"]
    with torch.no_grad():
        assert torch.equal(again(x)[0], model(x)[0])
        assert torch.equal(taming.load(folder)(x)[0], model(x)[0])
    with pytest.raises(ConfigError, match="not a Net2NetTransformer"):
        Net2NetTransformer.from_pretrained(folder)


def test_gumbel_and_dalle_round_trip(tmp_path):
    torch.manual_seed(0)
    dd = {"double_z": False, "z_channels": 8, "resolution": 16, "in_channels": 3, "out_ch": 3,
          "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [],
          "dropout": 0.0}  # fmt: skip
    gumbel = GumbelVQ(dd, None, n_embed=16, embed_dim=8, kl_weight=1e-6).eval()
    again = VQModel.from_pretrained(gumbel.save_pretrained(tmp_path / "g"))  # a subclass is fine
    assert type(again) is GumbelVQ and again.quantize.kl_weight == gumbel.quantize.kl_weight
    dalle = DalleVAE(
        encoder={"n_hid": 32, "n_blk_per_group": 1, "vocab_size": 16},
        decoder={"n_init": 8, "n_hid": 32, "n_blk_per_group": 1, "vocab_size": 16},
    ).eval()
    back = DalleVAE.from_pretrained(dalle.save_pretrained(tmp_path / "d"))
    ids = torch.randint(0, 16, (1, 2, 2))
    with torch.no_grad():
        assert torch.equal(back.decode_code(ids), dalle.decode_code(ids))
        for name, t in gumbel.state_dict().items():
            assert torch.equal(again.state_dict()[name], t), name


def test_net2net_round_trip(compat_dir, tmp_path):
    src = compat_dir / "transformer_uncond"
    model = taming.load(src)
    folder = model.save_pretrained(tmp_path / "t")
    again = Net2NetTransformer.from_pretrained(folder)
    text = (folder / "config.yaml").read_text()
    assert "ckpt_path: null" in text or "ckpt_path" not in text
    for name, t in model.state_dict().items():
        assert torch.equal(again.state_dict()[name], t), name
    idx = torch.randint(0, model.first_stage_model.n_embed, (2, 5))
    with torch.no_grad():
        assert torch.equal(again.transformer(idx)[0], model.transformer(idx)[0])
