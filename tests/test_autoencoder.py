"""Encoder/decoder and first-stage model behaviour: shapes, gradients, decode_code, save/load."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file, save_file

from taming.autoencoder import EMAVQ, Decoder, Encoder, GumbelVQ, VQModel, VQSegmentationModel
from taming.modules.attention import AttnBlock
from taming.schedules import LambdaWarmUpCosineScheduler

TINY = dict(
    double_z=False,
    z_channels=8,
    resolution=16,
    in_channels=3,
    out_ch=3,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[8],
    dropout=0.0,
)


def tiny_vq(cls=VQModel, **kw):
    torch.manual_seed(0)
    params = dict(ddconfig=TINY, lossconfig=None, n_embed=16, embed_dim=8)
    params.update(kw)
    return cls(**params)


def test_attention_equals_explicit_formula():
    torch.manual_seed(0)
    blk = AttnBlock(32)
    x = torch.randn(2, 32, 5, 3)
    h = blk.norm(x)
    q, k, v = blk.q(h).flatten(2), blk.k(h).flatten(2), blk.v(h).flatten(2)  # (B, C, N)
    w = torch.softmax(torch.einsum("bci,bcj->bij", q, k) / 32**0.5, dim=2)
    o = torch.einsum("bij,bcj->bci", w, v).view(2, 32, 5, 3)
    assert torch.allclose(blk(x), x + blk.proj_out(o), atol=1e-5)


@pytest.mark.parametrize(
    "ch_mult,res,attn,shape",
    [([1, 2], 16, [8], (2, 3, 16, 24)), ([1, 1, 2], 32, [8, 32], (1, 3, 32, 32))],
)
def test_encoder_decoder_shapes(ch_mult, res, attn, shape):
    cfg = dict(TINY, ch_mult=ch_mult, resolution=res, attn_resolutions=attn, double_z=True)
    enc, dec = Encoder(**cfg), Decoder(**cfg)
    f = 2 ** (len(ch_mult) - 1)
    x = torch.randn(*shape)
    z = enc(x)
    assert z.shape == (shape[0], 2 * cfg["z_channels"], shape[2] // f, shape[3] // f)
    y = dec(z[:, : cfg["z_channels"]])
    assert y.shape == x.shape
    # attention goes where the nominal resolution is listed, plus the mid block
    n_attn = sum(len(d.attn) for d in enc.down)
    expected = sum(1 for i in range(len(ch_mult)) if res // 2**i in attn) * cfg["num_res_blocks"]
    assert n_attn == expected


def test_decoder_give_pre_end():
    dec = Decoder(**dict(TINY, give_pre_end=True))
    assert dec(torch.randn(1, 8, 8, 8)).shape == (1, 32, 16, 16)


def test_unknown_ddconfig_key_fails_loudly():
    from taming.config import ConfigError

    with pytest.raises(ConfigError, match=r"ddconfig\.bogus"):
        tiny_vq(ddconfig=dict(TINY, bogus=1))


@pytest.mark.parametrize("cls", [VQModel, GumbelVQ, EMAVQ])
def test_every_parameter_gets_a_gradient(cls):
    model = tiny_vq(cls).train()
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    xrec, qloss = model(x)
    ((xrec - x).abs().mean() + qloss).backward()
    frozen = {n for n, p in model.named_parameters() if not p.requires_grad}
    if cls is EMAVQ:
        assert frozen == {
            "quantize.embedding.weight",
            "quantize.embedding.cluster_size",
            "quantize.embedding.embed_avg",
        }
    else:
        assert not frozen
    for name, p in model.named_parameters():
        if p.requires_grad:
            assert p.grad is not None, f"no gradient for {name}"
            assert torch.isfinite(p.grad).all(), f"non-finite gradient for {name}"
            assert p.grad.abs().sum() > 0, f"zero gradient for {name}"


def test_decode_code_equals_decode_of_codebook_entry():
    model = tiny_vq().eval()
    codes = torch.randint(0, 16, (2, 8, 6))
    with torch.no_grad():
        quant = model.quantize.get_codebook_entry(codes.reshape(-1), shape=(2, 8, 6, 8))
        assert torch.equal(model.decode_code(codes), model.decode(quant))
    with pytest.raises(ValueError, match="B, h, w"):
        model.decode_code(codes.reshape(2, -1))


def test_gumbel_decode_code_works():
    model = tiny_vq(GumbelVQ).eval()
    with torch.no_grad():
        _, _, info = model.encode(torch.rand(1, 3, 16, 16))
        out = model.decode_code(info.indices)
    assert out.shape == (1, 3, 16, 16)


def test_state_dict_round_trip(tmp_path):
    model = tiny_vq().eval()
    x = torch.rand(2, 3, 16, 16)
    torch.save({"state_dict": model.state_dict()}, tmp_path / "m.ckpt")
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    for path in (tmp_path / "m.ckpt", tmp_path / "m.safetensors"):
        torch.manual_seed(123)
        other = tiny_vq(ckpt_path=str(path)).eval()  # original-style ckpt_path loading
        with torch.no_grad():
            assert torch.equal(model(x)[0], other(x)[0])
    assert set(load_file(tmp_path / "m.safetensors")) == set(model.state_dict())


def test_init_from_ckpt_reports_mismatches(tmp_path):
    from taming.compat.checkpoint import CheckpointError

    sd = tiny_vq().state_dict()
    sd.pop("decoder.conv_out.bias")
    sd["decoder.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, tmp_path / "bad.ckpt")
    with pytest.raises(CheckpointError, match="decoder.conv_out.bias") as err:
        tiny_vq(ckpt_path=str(tmp_path / "bad.ckpt"))
    assert "decoder.extra.weight" in str(err.value)
    # ignore_keys drops by prefix, as the original
    sd2 = tiny_vq().state_dict()
    sd2["decoder.extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd2}, tmp_path / "ok.ckpt")
    tiny_vq(ckpt_path=str(tmp_path / "ok.ckpt"), ignore_keys=["decoder.extra"])


def test_segmentation_model_colorize_and_logits():
    cfg = dict(TINY, in_channels=5, out_ch=5)
    model = VQSegmentationModel(n_labels=5, ddconfig=cfg, lossconfig=None, n_embed=16, embed_dim=8)
    assert model.colorize.shape == (3, 5, 1, 1)
    seg = torch.nn.functional.one_hot(torch.randint(0, 5, (2, 16, 16)), 5).float()  # (B, H, W, K)
    logs = model.log_images({"segmentation": seg})
    assert logs["inputs"].shape == (2, 3, 16, 16)
    assert logs["reconstructions"].min() >= -1 and logs["reconstructions"].max() <= 1


def test_gumbel_temperature_schedule():
    sched = LambdaWarmUpCosineScheduler(
        warm_up_steps=0, max_decay_steps=1000001, lr_start=0.9, lr_max=0.9, lr_min=1e-6
    )
    model = tiny_vq(GumbelVQ, temperature_scheduler_config=None)
    model.temperature_scheduler = sched
    assert model.temperature_scheduling(0) == pytest.approx(0.9)
    assert model.quantize.temperature == pytest.approx(0.9)
    assert model.temperature_scheduling(500000) == pytest.approx(
        1e-6 + 0.5 * (0.9 - 1e-6), rel=1e-5
    )
    assert model.temperature_scheduling(2_000_000) == pytest.approx(1e-6)
    warm = LambdaWarmUpCosineScheduler(10, lr_min=0.0, lr_max=1.0, lr_start=0.0, max_decay_steps=20)
    assert warm(5) == pytest.approx(0.5) and warm(15) == pytest.approx(0.5) and warm(20) == 0.0


def test_get_input_channels_last():
    batch = {"image": torch.rand(2, 16, 12, 3), "depth": torch.rand(2, 16, 12)}
    model = tiny_vq()
    assert model.get_input(batch).shape == (2, 3, 16, 12)
    assert model.get_input(batch, "depth").shape == (2, 1, 16, 12)
    assert model.get_input(batch).is_contiguous()


def test_init_from_ckpt_reads_our_trainer_checkpoints(tmp_path):
    """`taming train` checkpoints hold the model under `model.` (plus `model.loss.*`)."""
    model = tiny_vq().eval()
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    sd["model.loss.discriminator.main.0.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd, "global_step": 3}, tmp_path / "last.ckpt")
    other = tiny_vq(ckpt_path=str(tmp_path / "last.ckpt")).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x)[0], other(x)[0])
