"""`taming convert` for taming and latent-diffusion checkpoints, and LlamaGen's VQ tokenizers.

Each source is built in its own layout with random weights, converted by the CLI and loaded
with `taming.load`; outputs are compared with an independent re-statement of the source
(`tests/vq_reference.py`) in float64 to 1e-5, code ids exactly.
"""

from __future__ import annotations

import os
import stat

import torch
import yaml

import taming
from taming.cli import main
from vq_reference import LlamaGenVQ, ldm_decode, ldm_encode, ldm_quantize, ldm_state_dict

ATOL = 1e-5


def test_round_trip_of_the_original_vqmodel_is_bit_identical(compat_dir, tmp_path, capsys):
    src = compat_dir / "vqmodel"
    dst = tmp_path / "vq"
    assert main(["convert", str(src / "model.ckpt"), str(dst)]) == 0
    out = capsys.readouterr().out
    assert "mapped 183 keys" in out and "dropped 23 keys: loss." in out and "missing 0" in out
    ours, orig = taming.load(dst), taming.load(src)
    x = torch.load(src / "inputs.pt")["x"]
    with torch.no_grad():
        qa, qb = orig.encode(x), ours.encode(x)
        assert torch.equal(qa.quant, qb.quant)
        assert torch.equal(qa.info.indices, qb.info.indices)
        assert torch.equal(orig.decode(qa.quant), ours.decode(qb.quant))
    # and the original implementation's own reconstruction (the fixture) still holds
    expected = torch.load(src / "expected.pt")
    if "dec" in expected:
        with torch.no_grad():
            torch.testing.assert_close(ours(x)[0], expected["dec"], atol=1e-5, rtol=1e-5)


def test_outputs_get_the_umasks_mode(compat_dir, tmp_path):
    old = os.umask(0o022)
    try:
        dst = tmp_path / "vq"
        assert main(["convert", str(compat_dir / "vqmodel" / "model.ckpt"), str(dst)]) == 0
        single = tmp_path / "vq.safetensors"
        assert main(["convert", str(compat_dir / "vqmodel" / "model.ckpt"), str(single)]) == 0
    finally:
        os.umask(old)
    for p in (dst / "model.safetensors", dst / "config.yaml", single):
        assert stat.S_IMODE(p.stat().st_mode) == 0o644, p
    assert not [p for p in tmp_path.rglob(".*.tmp")]


def _ldm_source(tmp_path, gen):
    dd = {
        "double_z": False, "z_channels": 4, "resolution": 16, "in_channels": 3, "out_ch": 3,
        "ch": 32, "ch_mult": [1, 2], "num_res_blocks": 1, "attn_resolutions": [8],
        "dropout": 0.0, "attn_type": "vanilla",
    }  # fmt: skip
    sd = ldm_state_dict(dd, n_embed=32, embed_dim=4, gen=gen)
    sd["loss.logvar"] = torch.zeros(())  # training-only entries a real ldm checkpoint carries
    sd["model_ema.decay"] = torch.tensor(0.999)
    params = {"embed_dim": 4, "n_embed": 32, "monitor": "val/rec_loss", "ddconfig": dd,
              "lossconfig": {"target": "torch.nn.Identity"}}  # fmt: skip
    cfg = {"model": {"target": "ldm.models.autoencoder.VQModel", "params": params}}
    folder = tmp_path / "vq-f8-small"
    folder.mkdir()
    (folder / "config.yaml").write_text(yaml.safe_dump(cfg))
    torch.save({"state_dict": sd, "global_step": 7}, folder / "model.ckpt")
    return folder, dd, sd


def test_latent_diffusion_vqmodel_matches_its_forward(tmp_path, capsys):
    gen = torch.Generator().manual_seed(0)
    folder, dd, sd = _ldm_source(tmp_path, gen)
    dst = tmp_path / "out"
    assert main(["convert", str(folder / "model.ckpt"), str(dst)]) == 0  # family from target
    out = capsys.readouterr().out
    assert out.startswith("ldm -> ") and "dropped 2 keys: loss.logvar, model_ema.decay" in out
    model = taming.load(dst).double()
    sd64 = {k: v.double() for k, v in sd.items()}
    x = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        h = ldm_encode(sd64, dd, x)
        ref_q, ref_ids = ldm_quantize(sd64, h)
        q = model.encode(x)
        assert torch.equal(q.info.indices.view(ref_ids.shape), ref_ids)
        torch.testing.assert_close(q.quant, ref_q, atol=ATOL, rtol=0)
        torch.testing.assert_close(
            model.decode(q.quant), ldm_decode(sd64, dd, ref_q), atol=ATOL, rtol=0
        )
        torch.testing.assert_close(
            model.decode_code(ref_ids), ldm_decode(sd64, dd, ref_q), atol=ATOL, rtol=0
        )


def test_unplaceable_key_is_an_error(tmp_path, capsys):
    folder, _, sd = _ldm_source(tmp_path, torch.Generator().manual_seed(1))
    sd["extra.weight"] = torch.zeros(1)
    torch.save({"state_dict": sd}, folder / "model.ckpt")
    assert main(["convert", str(folder), str(tmp_path / "out")]) == 2
    assert "cannot place: extra.weight" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def _randomize(module, gen):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name:
                p.copy_(torch.randn(p.shape, generator=gen))


def test_llamagen_tokenizer_matches_its_vq_model(tmp_path, capsys):
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    ref = LlamaGenVQ(codebook_size=64, codebook_embed_dim=8, ch_mult=[1, 2], z_channels=32).eval()
    _randomize(ref, gen)
    src = tmp_path / "vq_small.pt"
    torch.save({"model": ref.state_dict(), "steps": 10}, src)
    dst = tmp_path / "out"
    args = ["convert", str(src), str(dst), "--arch", "VQ-16", "codebook_size=64",
            "encoder_ch_mult=[1,2]", "decoder_ch_mult=[1,2]", "z_channels=32"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.startswith("llamagen -> ") and "dropped 1 keys: quantize.codebook_used" in out
    model = taming.load(dst).double()
    ref = ref.double()
    x = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        ref_q, ref_ids = ref.encode(x)
        q = model.encode(x)
        assert torch.equal(q.info.indices.reshape(-1), ref_ids)
        torch.testing.assert_close(q.quant, ref_q, atol=ATOL, rtol=0)
        torch.testing.assert_close(model.decode(q.quant), ref.decode(ref_q), atol=ATOL, rtol=0)
        ids = ref_ids.view(2, 8, 8)
        torch.testing.assert_close(
            model.decode_code(ids), ref.decode_code(ids, (2, 8, 8, 8)), atol=ATOL, rtol=0
        )


def test_llamagen_rejects_unknown_model_args(tmp_path, capsys):
    torch.save({"model": {"encoder.conv_in.weight": torch.zeros(1)}}, tmp_path / "x.pt")
    assert main(["convert", str(tmp_path / "x.pt"), str(tmp_path / "o"), "codebook=8"]) == 2
    assert "unknown LlamaGen ModelArgs codebook" in capsys.readouterr().err
