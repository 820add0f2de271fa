"""The first stage's inference paths against independent references.

- fp32 inference (channels-last, fused SiLU/attention, in-place adds) against the original's
  codec maths re-implemented literally (`benchmarks/original_codec.py`: NCHW, `x * sigmoid(x)`,
  two `bmm`s), computed in float64: within 1e-5 normwise, at two input sizes;
- opt-in bf16 (`set_first_stage_dtype`, `taming.load(..., dtype="bf16")`): reconstruction PSNR
  on the demo photos within 0.1 dB of fp32, the quantizer and 1x1 convs kept fp32, the
  state-dict keys unchanged, and fp32 kept on CPUs without native bf16;
- opt-in `torch.compile` (`compile_first_stage`): equal to eager within 1e-5 normwise, and
  skipped cleanly without a C++ compiler.

Models are small and random (GroupNorm affine parameters re-drawn so they matter).
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import pytest
import torch

import taming
from taming.autoencoder import inference
from taming.autoencoder.inference import compile_first_stage, set_first_stage_dtype
from taming.autoencoder.vqmodel import VQModel

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
from original_codec import OriginalCodec  # noqa: E402

DDCONFIG = dict(
    double_z=False,
    z_channels=32,
    resolution=16,
    in_channels=3,
    out_ch=3,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[8],
    dropout=0.0,
)


def small_model(seed: int = 0, **ddconfig) -> VQModel:
    torch.manual_seed(seed)
    dd = {**DDCONFIG, **ddconfig}
    model = VQModel(ddconfig=dd, lossconfig=None, n_embed=64, embed_dim=16).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.GroupNorm):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.3)
    return model


def rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a.double() - b.double()).norm() / b.double().norm()).item()


@pytest.mark.parametrize("res", [16, 32])
def test_fp32_inference_matches_float64_original_maths(res):
    model = small_model()
    ref = OriginalCodec.from_vqmodel(model).double()
    x = torch.rand(2, 3, res, res, generator=torch.Generator().manual_seed(res)) * 2 - 1
    with torch.inference_mode():
        h = model.encode_to_prequant(x)
        h_ref = ref.quant_conv(ref.encoder(x.double()))
        assert rel(h, h_ref) < 1e-5
        quant = torch.randn(2, 16, res // 2, res // 2, generator=torch.Generator())
        dec = model.decode(quant)
        dec_ref = ref.decoder(ref.post_quant_conv(quant.double()))
        assert dec.dtype == torch.float32
        assert rel(dec, dec_ref) < 1e-5


def _psnr(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    mse = ((a.clamp(-1, 1) - b) / 2).square().mean()  # images in [-1, 1] -> range 1
    return -10 * torch.log10(mse)


def test_bf16_first_stage_psnr_on_demo_photos():
    pytest.importorskip("skimage")
    from taming.data.demo import SkimagePhotos

    photos = SkimagePhotos(size=32, split="validation")
    x = torch.stack([torch.as_tensor(photos[i]["image"]) for i in range(len(photos))])
    x = x.permute(0, 3, 1, 2).float()  # (N, 3, 32, 32) in [-1, 1]
    fp32, bf16 = small_model(), small_model()
    keys = list(fp32.state_dict())
    assert set_first_stage_dtype(bf16, "bf16", force=True) == "bf16"
    assert list(bf16.state_dict()) == keys
    assert bf16.encoder.conv_in.weight.dtype == torch.bfloat16
    assert bf16.decoder.conv_out.weight.dtype == torch.bfloat16
    assert bf16.quantize.embedding.weight.dtype == torch.float32
    assert bf16.quant_conv.weight.dtype == torch.float32
    with torch.inference_mode():
        rec32 = fp32(x)[0]
        rec16 = bf16(x)[0]
    assert rec16.dtype == torch.float32
    assert abs(_psnr(rec16, x) - _psnr(rec32, x)).item() < 0.1
    assert rel(rec16, rec32) < 0.1  # bf16 keeps ~3 significant digits per operation


def test_bf16_stays_fp32_without_native_bf16(monkeypatch, caplog):
    monkeypatch.setattr(inference, "native_bf16", lambda: False)
    model = small_model()
    with caplog.at_level(logging.WARNING):
        assert set_first_stage_dtype(model, "bf16") == "fp32"
    assert "no native bf16" in caplog.text
    assert model.encoder.conv_in.weight.dtype == torch.float32
    with pytest.raises(ValueError, match="dtype must be"):
        set_first_stage_dtype(model, "int4")


def test_load_dtype_bf16(monkeypatch, compat_dir):
    monkeypatch.setattr(inference, "native_bf16", lambda: True)
    model = taming.load(compat_dir / "vqmodel", dtype="bf16")
    assert model.encoder.conv_in.weight.dtype == torch.bfloat16
    assert model.post_quant_conv.weight.dtype == torch.float32
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.inference_mode():
        assert model(x)[0].dtype == torch.float32


def test_compile_skipped_without_cpp_compiler(monkeypatch, caplog):
    monkeypatch.setattr(inference, "cpp_compiler", lambda: None)
    model = small_model()
    with caplog.at_level(logging.WARNING):
        assert compile_first_stage(model) is False
    assert "no C++ compiler" in caplog.text
    assert model.decoder._compiled_call_impl is None


def test_compiled_decoder_matches_eager():
    if inference.cpp_compiler() is None:
        pytest.skip("no C++ compiler for inductor's CPU backend")
    tiny = dict(ch_mult=[1], num_res_blocks=0, attn_resolutions=[], resolution=8)  # few kernels
    eager, compiled = small_model(**tiny), small_model(**tiny)
    assert compile_first_stage(compiled)
    assert list(compiled.state_dict()) == list(eager.state_dict())
    quant = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        out = compiled.decode(quant)
        ref = eager.decode(quant)
    assert rel(out, ref) < 1e-5
    # the compiled decoder itself passed its first-call check (with inductor's AVX2 code it
    # does not, and runs eagerly: tests/test_compiling.py)
    if os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":
        assert not compiled.decoder.forward.failed
    assert compiled.decoder.forward.checked  # later calls of this shape run compiled only


def test_inference_conv_weights_follow_changes():
    """The cached channels-last conv weights (taming.modules.fast) track in-place updates
    and loaded state dicts, and never enter the state dict."""
    model, other = small_model(0), small_model(1)
    quant = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(2))
    with torch.inference_mode():
        model.decode(quant)  # fills the caches
    assert "_weight_cl_cache" not in "".join(model.state_dict())
    with torch.no_grad():
        model.decoder.conv_in.weight.mul_(1.5)  # an optimizer-like in-place update
    for _ in range(2):
        with torch.inference_mode():
            out = model.decode(quant)
        ref = OriginalCodec.from_vqmodel(model).double()
        assert rel(out, ref.decoder(ref.post_quant_conv(quant.double()))) < 1e-5
        model.load_state_dict(other.state_dict())
