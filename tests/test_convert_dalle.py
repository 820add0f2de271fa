"""`taming convert` of OpenAI's DALL-E dVAE pickles (`encoder.pkl`, `decoder.pkl`).

The `dall_e` package needs torchvision, which cannot be installed beside this torch, so the
reference is a re-statement of its documented layout (`dall_e/encoder.py`, `decoder.py`,
`utils.py`: attrs modules `Encoder(group_count, n_hid, n_blk_per_group, input_channels,
vocab_size)`, blocks with `id_path` and a `res_path` of relu/conv pairs scaled by
`1 / n_layers**2`, `Conv2d` with parameters `w`, `b`), registered as the modules `dall_e.*` so
that `torch.save` pickles whole modules exactly as the released files are. The modules are
removed from `sys.modules` before converting: the converter never imports or runs them.
"""

from __future__ import annotations

import math
import os
import sys
import types
from collections import OrderedDict

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import taming
from taming.cli import main

ATOL = 1e-5


class Conv2d(nn.Module):
    def __init__(self, n_in, n_out, kw, use_float16=True, device=None, requires_grad=False):
        super().__init__()
        self.n_in, self.n_out, self.kw = n_in, n_out, kw
        self.use_float16, self.device, self.requires_grad = use_float16, device, requires_grad
        w = torch.empty(n_out, n_in, kw, kw).normal_(std=1 / math.sqrt(n_in * kw**2))
        self.w, self.b = nn.Parameter(w), nn.Parameter(0.1 * torch.randn(n_out))

    def forward(self, x):
        return F.conv2d(
            x.to(self.w.dtype), self.w, self.b, padding=(self.kw - 1) // 2
        )  # pkg: float()


class EncoderBlock(nn.Module):
    def __init__(self, n_in, n_out, n_layers, kernels=(3, 3, 3, 1)):
        super().__init__()
        self.n_in, self.n_out, self.n_layers = n_in, n_out, n_layers
        self.n_hid = n_out // 4
        self.post_gain = 1 / (n_layers**2)
        self.id_path = Conv2d(n_in, n_out, 1) if n_in != n_out else nn.Identity()
        c = (n_in, self.n_hid, self.n_hid, self.n_hid, n_out)
        layers = []
        for i, k in enumerate(kernels):
            layers += [(f"relu_{i + 1}", nn.ReLU()), (f"conv_{i + 1}", Conv2d(c[i], c[i + 1], k))]
        self.res_path = nn.Sequential(OrderedDict(layers))

    def forward(self, x):
        return self.id_path(x) + self.post_gain * self.res_path(x)


class DecoderBlock(EncoderBlock):
    def __init__(self, n_in, n_out, n_layers):
        super().__init__(n_in, n_out, n_layers, kernels=(1, 3, 3, 3))


class Encoder(nn.Module):
    def __init__(self, group_count=4, n_hid=32, n_blk_per_group=1, input_channels=3,
                 vocab_size=64):  # fmt: skip
        super().__init__()
        self.group_count, self.n_hid, self.n_blk_per_group = group_count, n_hid, n_blk_per_group
        self.input_channels, self.vocab_size = input_channels, vocab_size
        self.device, self.requires_grad, self.use_mixed_precision = torch.device("cpu"), False, True
        n_layers = group_count * n_blk_per_group
        groups = [("input", Conv2d(input_channels, n_hid, 7))]
        for g, m in enumerate((1, 2, 4, 8)):
            n_in = n_hid * (1, 1, 2, 4)[g]
            blocks = [
                (f"block_{i + 1}", EncoderBlock(n_in if i == 0 else m * n_hid, m * n_hid, n_layers))
                for i in range(n_blk_per_group)
            ]
            if g < 3:
                blocks.append(("pool", nn.MaxPool2d(kernel_size=2)))
            groups.append((f"group_{g + 1}", nn.Sequential(OrderedDict(blocks))))
        out = OrderedDict(relu=nn.ReLU(), conv=Conv2d(8 * n_hid, vocab_size, 1, use_float16=False))
        groups.append(("output", nn.Sequential(out)))
        self.blocks = nn.Sequential(OrderedDict(groups))

    def forward(self, x):
        return self.blocks(x)


class Decoder(nn.Module):
    def __init__(self, group_count=4, n_init=16, n_hid=32, n_blk_per_group=1, output_channels=3,
                 vocab_size=64):  # fmt: skip
        super().__init__()
        self.group_count, self.n_init, self.n_hid = group_count, n_init, n_hid
        self.n_blk_per_group, self.output_channels, self.vocab_size = (
            n_blk_per_group, output_channels, vocab_size)  # fmt: skip
        self.device, self.requires_grad, self.use_mixed_precision = torch.device("cpu"), False, True
        n_layers = group_count * n_blk_per_group
        groups = [("input", Conv2d(vocab_size, n_init, 1, use_float16=False))]
        for g, m in enumerate((8, 4, 2, 1)):
            n_in = n_init if g == 0 else n_hid * (8, 4, 2)[g - 1]
            blocks = [
                (f"block_{i + 1}", DecoderBlock(n_in if i == 0 else m * n_hid, m * n_hid, n_layers))
                for i in range(n_blk_per_group)
            ]
            if g < 3:
                blocks.append(("upsample", nn.Upsample(scale_factor=2, mode="nearest")))
            groups.append((f"group_{g + 1}", nn.Sequential(OrderedDict(blocks))))
        groups.append(("output", nn.Sequential(OrderedDict(
            relu=nn.ReLU(), conv=Conv2d(n_hid, 2 * output_channels, 1)))))  # fmt: skip
        self.blocks = nn.Sequential(OrderedDict(groups))

    def forward(self, x):
        return self.blocks(x)


def map_pixels(x, eps=0.1):
    return (1 - 2 * eps) * x + eps


def unmap_pixels(x, eps=0.1):
    return torch.clamp((x - eps) / (1 - 2 * eps), 0, 1)


@pytest.fixture
def dall_e_modules(monkeypatch):
    """Register the re-statement as `dall_e.encoder/decoder/utils` while pickling."""
    pkg = types.ModuleType("dall_e")
    mods = {n: types.ModuleType(f"dall_e.{n}") for n in ("encoder", "decoder", "utils")}
    for cls, mod in ((Conv2d, "utils"), (EncoderBlock, "encoder"), (Encoder, "encoder"),
                     (DecoderBlock, "decoder"), (Decoder, "decoder")):  # fmt: skip
        cls.__module__ = f"dall_e.{mod}"
        setattr(mods[mod], cls.__name__, cls)
    monkeypatch.setitem(sys.modules, "dall_e", pkg)
    for n, m in mods.items():
        monkeypatch.setitem(sys.modules, f"dall_e.{n}", m)
        setattr(pkg, n, m)
    yield
    for cls in (Conv2d, EncoderBlock, Encoder, DecoderBlock, Decoder):
        cls.__module__ = __name__


def _release(folder, enc, dec):
    folder.mkdir()
    torch.save(enc, folder / "encoder.pkl")
    torch.save(dec, folder / "decoder.pkl")


def test_dalle_dvae_matches_the_package_layout(tmp_path, capsys, dall_e_modules, monkeypatch):
    torch.manual_seed(0)
    enc, dec = Encoder().eval(), Decoder().eval()
    _release(tmp_path / "dall_e", enc, dec)
    for name in ("dall_e", "dall_e.encoder", "dall_e.decoder", "dall_e.utils"):
        monkeypatch.delitem(sys.modules, name)
    dst = tmp_path / "out"
    assert main(["convert", str(tmp_path / "dall_e"), str(dst)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("dalle -> taming.autoencoder.dalle.DalleVAE") and "missing 0" in out
    model = taming.load(dst).double()
    enc, dec = enc.double(), dec.double()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64) * 2 - 1
    with torch.no_grad():
        ref_ids = torch.argmax(enc(map_pixels((x + 1) / 2)), dim=1)
        q = model.encode(x)
        assert torch.equal(q.info.indices, ref_ids)
        onehot = F.one_hot(ref_ids, 64).permute(0, 3, 1, 2).double()
        ref_img = 2 * unmap_pixels(torch.sigmoid(dec(onehot)[:, :3])) - 1
        torch.testing.assert_close(model.decode_code(ref_ids), ref_img, atol=ATOL, rtol=0)
        torch.testing.assert_close(model.decode(q.quant), ref_img, atol=ATOL, rtol=0)


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_dalle_pickle_with_a_payload_is_refused(tmp_path, capsys, dall_e_modules):
    torch.manual_seed(0)
    enc, dec = Encoder(), Decoder()
    marker = tmp_path / "payload_ran"
    enc.extra = _Payload(marker)  # rides along in the module's __dict__
    _release(tmp_path / "dall_e", enc, dec)
    assert main(["convert", str(tmp_path / "dall_e"), str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "refused" in err and "system" in err
    assert not marker.exists()
    assert not (tmp_path / "out").exists()
