"""`VQModel(quantizer_config=...)`: quantizer selection, vocabulary from the quantizer, decoding."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from taming.autoencoder import VQModel
from taming.config import ConfigError, instantiate_from_config, validate_kwargs
from taming.losses import VQLPIPSWithDiscriminator
from taming.quantize import FSQ, LFQ, ImprovedVectorQuantizer, VectorQuantizer

TINY = dict(
    double_z=False,
    z_channels=8,
    resolution=16,
    in_channels=3,
    out_ch=3,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[],
    dropout=0.0,
)

CONFIGS = {
    "fsq": ({"target": "taming.quantize.FSQ", "params": {"levels": [8, 5, 5, 5]}}, FSQ, 1000, 4),
    "lfq": ({"target": "taming.quantize.LFQ", "params": {"codebook_size": 256}}, LFQ, 256, 8),
    "vq": (
        {
            "target": "taming.quantize.improved_vq.ImprovedVectorQuantizer",
            "params": {"n_e": 64, "e_dim": 6, "l2_norm": True, "restart_unused_after": 5},
        },
        ImprovedVectorQuantizer,
        64,
        6,
    ),
}


@pytest.mark.parametrize("name", sorted(CONFIGS))
def test_quantizer_config_selects_the_quantizer_and_its_vocabulary(name):
    config, cls, vocab, dim = CONFIGS[name]
    torch.manual_seed(0)
    model = VQModel(ddconfig=TINY, lossconfig=None, quantizer_config=config).eval()
    assert isinstance(model.quantize, cls)
    assert model.n_embed == vocab and model.embed_dim == dim
    assert model.quant_conv.out_channels == dim and model.post_quant_conv.in_channels == dim
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        quant, _, info = model.encode(x)
        assert info.indices.shape == (2, 8, 8)
        torch.testing.assert_close(model.decode_code(info.indices), model.decode(quant))
    # the vocabulary the trainer counts codes over
    assert model.quantize.vocab_size == vocab


def test_given_sizes_must_agree_with_the_quantizer():
    config = CONFIGS["fsq"][0]
    VQModel(ddconfig=TINY, lossconfig=None, n_embed=1000, embed_dim=4, quantizer_config=config)
    with pytest.raises(ConfigError, match="n_embed: 1024 disagrees"):
        VQModel(ddconfig=TINY, lossconfig=None, n_embed=1024, quantizer_config=config)
    with pytest.raises(ConfigError, match="embed_dim: 8 disagrees"):
        VQModel(ddconfig=TINY, lossconfig=None, embed_dim=8, quantizer_config=config)
    with pytest.raises(ConfigError, match="quantizer_config.params.level"):
        bad = {"target": "taming.quantize.FSQ", "params": {"level": [8]}}
        VQModel(ddconfig=TINY, lossconfig=None, quantizer_config=bad)


def test_without_quantizer_config_the_original_model_is_unchanged():
    torch.manual_seed(0)
    model = VQModel(ddconfig=TINY, lossconfig=None, n_embed=16, embed_dim=8)
    assert type(model.quantize) is VectorQuantizer
    assert model.quantize.vocab_size == 16 and model.quantize.embed_dim == 8
    keys = {k for k in model.state_dict() if k.startswith("quantize.")}
    assert keys == {"quantize.embedding.weight"}
    with pytest.raises(ConfigError, match="n_embed: required"):
        VQModel(ddconfig=TINY, lossconfig=None, embed_dim=8)


def test_llamagen_layout_is_the_plain_l2_quantizer():
    """LlamaGen's VectorQuantizer keeps `embedding.weight` (K, 8) and normalises on use."""
    config = {
        "target": "taming.quantize.ImprovedVectorQuantizer",
        "params": {"n_e": 128, "e_dim": 8, "l2_norm": True},
    }
    model = VQModel(ddconfig=TINY, lossconfig=None, quantizer_config=config)
    keys = {k: tuple(v.shape) for k, v in model.state_dict().items() if k.startswith("quantize")}
    assert keys == {"quantize.embedding.weight": (128, 8)}


REPO = Path(__file__).resolve().parents[1]
SHIPPED = {
    "modern_f16_16384.yaml": (ImprovedVectorQuantizer, 16384, 8),
    "skimage_modern.yaml": (ImprovedVectorQuantizer, 4096, 32),
    "skimage_fsq.yaml": (FSQ, 4375, 5),
    "skimage_lfq.yaml": (LFQ, 4096, 12),
}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_shipped_tokenizer_configs_build(name):
    cls, vocab, dim = SHIPPED[name]
    cfg = OmegaConf.to_container(OmegaConf.load(REPO / "configs" / "vqgan" / name), resolve=True)
    model = instantiate_from_config(cfg["model"], where="model")
    assert isinstance(model.quantize, cls)
    assert (model.n_embed, model.embed_dim) == (vocab, dim)
    loss = cfg["model"]["params"]["lossconfig"]
    validate_kwargs(VQLPIPSWithDiscriminator, loss["params"], "lossconfig.params")
    assert loss["params"]["lecam_weight"] > 0 and loss["params"]["disc_warmup_steps"] > 0
