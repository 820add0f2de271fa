"""`taming convert` of a diffusers `VQModel` folder, compared with `diffusers.VQModel` itself.

diffusers is a test extra (`pip install -e .[interop]`; it does not pull torchvision); the
test is skipped where it is not installed.
"""

from __future__ import annotations

import pytest
import torch

import taming
from taming.cli import main

diffusers = pytest.importorskip("diffusers")

ATOL = 1e-5


def _randomize(module, gen):
    with torch.no_grad():
        for name, p in module.named_parameters():
            if "norm" in name and name.endswith("weight"):
                p.copy_(1 + 0.1 * torch.randn(p.shape, generator=gen))
            elif name.endswith("bias"):
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
            elif "embedding" in name:
                p.copy_(torch.randn(p.shape, generator=gen))


def test_diffusers_vqmodel_matches_diffusers(tmp_path, capsys):
    attn_levels = (1,)  # attention in the lower level: every key kind appears
    gen = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    down = tuple(
        "AttnDownEncoderBlock2D" if i in attn_levels else "DownEncoderBlock2D" for i in range(2)
    )
    up = tuple("AttnUpDecoderBlock2D" if i in attn_levels else "UpDecoderBlock2D" for i in (1, 0))
    ref = diffusers.VQModel(
        in_channels=3,
        out_channels=3,
        down_block_types=down,
        up_block_types=up,
        block_out_channels=(32, 64),
        layers_per_block=1,
        latent_channels=4,
        sample_size=16,
        num_vq_embeddings=32,
        vq_embed_dim=4,
    ).eval()
    _randomize(ref, gen)
    src = tmp_path / "hf"
    ref.save_pretrained(src)
    dst = tmp_path / "out"
    assert main(["convert", str(src), str(dst)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("diffusers -> ") and "dropped 0 keys" in out and "missing 0" in out
    model = taming.load(dst).double()
    ref = ref.double()
    x = torch.rand(2, 3, 16, 16, generator=gen, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        h = ref.encode(x).latents
        ref_q, _, (_, _, ref_ids) = ref.quantize(h)
        q = model.encode(x)
        assert torch.equal(q.info.indices.reshape(-1), ref_ids.reshape(-1))
        torch.testing.assert_close(q.quant, ref_q, atol=ATOL, rtol=0)
        ref_dec = ref.decode(h).sample
        torch.testing.assert_close(model.decode(q.quant), ref_dec, atol=ATOL, rtol=0)
        ids = q.info.indices.view(2, 8, 8)
        torch.testing.assert_close(model.decode_code(ids), ref_dec, atol=ATOL, rtol=0)
