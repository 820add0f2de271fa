"""A literal re-implementation of the original VQGAN codec path, for `bench_codec.py --baseline`.

The maths of CompVis/taming-transformers' `taming/modules/diffusionmodules/model.py`
(`Normalize`, `nonlinearity`, `Upsample`, `Downsample`, `ResnetBlock`, `AttnBlock`, `Encoder`,
`Decoder`) and of `VectorQuantizer2` (`taming/modules/vqvae/quantize.py`) as SPEC.md describes
them, written for this benchmark: NCHW activations throughout, swish as `x * sigmoid(x)`, the
attention by two explicit `bmm`s with the softmax over keys, the quantizer's squared distances
in the einsum form followed by `argmin` and an embedding lookup, the straight-through output
and its loss, the permutes back with `.contiguous()`. Module names match the original (and
ours), so `OriginalCodec.from_vqmodel(model)` loads our weights with `strict=True`.

Only the inference path that the benchmark times exists here (no temb, no training helpers).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["OriginalCodec"]


def _norm(c: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=c, eps=1e-6, affine=True)


def _swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


class _Upsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _Downsample(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0))


class _ResnetBlock(nn.Module):
    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.in_channels, self.out_channels = cin, cout
        self.norm1 = _norm(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2 = _norm(cout)
        self.dropout = nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        h = self.norm1(h)
        h = _swish(h)
        h = self.conv1(h)
        h = self.norm2(h)
        h = _swish(h)
        h = self.dropout(h)
        h = self.conv2(h)
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class _AttnBlock(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.norm = _norm(c)
        self.q = nn.Conv2d(c, c, 1)
        self.k = nn.Conv2d(c, c, 1)
        self.v = nn.Conv2d(c, c, 1)
        self.proj_out = nn.Conv2d(c, c, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # (B, HW, C)
        k = k.reshape(b, c, hh * ww)  # (B, C, HW)
        w = torch.bmm(q, k) * (int(c) ** (-0.5))  # (B, HW queries, HW keys)
        w = F.softmax(w, dim=2)
        v = v.reshape(b, c, hh * ww)  # (B, C, HW)
        h = torch.bmm(v, w.permute(0, 2, 1))  # (B, C, HW): o[c, i] = sum_j v[c, j] w[i, j]
        h = h.reshape(b, c, hh, ww)
        return x + self.proj_out(h)


def _level() -> nn.Module:
    m = nn.Module()
    m.block = nn.ModuleList()
    m.attn = nn.ModuleList()
    return m


def _mid(c: int) -> nn.Module:
    m = nn.Module()
    m.block_1 = _ResnetBlock(c, c)
    m.attn_1 = _AttnBlock(c)
    m.block_2 = _ResnetBlock(c, c)
    return m


class _Encoder(nn.Module):
    def __init__(self, ch, ch_mult, num_res_blocks, attn_resolutions, in_channels, resolution,
                 z_channels, double_z):  # fmt: skip
        super().__init__()
        self.conv_in = nn.Conv2d(in_channels, ch, 3, 1, 1)
        in_mult = (1,) + tuple(ch_mult)
        res = resolution
        self.down = nn.ModuleList()
        for i, mult in enumerate(ch_mult):
            lvl = _level()
            cin = ch * in_mult[i]
            for _ in range(num_res_blocks):
                lvl.block.append(_ResnetBlock(cin, ch * mult))
                cin = ch * mult
                if res in attn_resolutions:
                    lvl.attn.append(_AttnBlock(cin))
            if i != len(ch_mult) - 1:
                lvl.downsample = _Downsample(cin)
                res //= 2
            self.down.append(lvl)
        self.mid = _mid(cin)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, 2 * z_channels if double_z else z_channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hs = [self.conv_in(x)]
        for i, lvl in enumerate(self.down):
            for j, block in enumerate(lvl.block):
                h = block(hs[-1])
                if len(lvl.attn) > 0:
                    h = lvl.attn[j](h)
                hs.append(h)
            if i != len(self.down) - 1:
                hs.append(lvl.downsample(hs[-1]))
        h = hs[-1]
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        return self.conv_out(_swish(self.norm_out(h)))


class _Decoder(nn.Module):
    def __init__(self, ch, out_ch, ch_mult, num_res_blocks, attn_resolutions, resolution,
                 z_channels):  # fmt: skip
        super().__init__()
        cin = ch * ch_mult[-1]
        res = resolution // 2 ** (len(ch_mult) - 1)
        self.conv_in = nn.Conv2d(z_channels, cin, 3, 1, 1)
        self.mid = _mid(cin)
        self.up = nn.ModuleList()
        for i in reversed(range(len(ch_mult))):
            lvl = _level()
            for _ in range(num_res_blocks + 1):
                lvl.block.append(_ResnetBlock(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
                if res in attn_resolutions:
                    lvl.attn.append(_AttnBlock(cin))
            if i != 0:
                lvl.upsample = _Upsample(cin)
                res *= 2
            self.up.insert(0, lvl)
        self.norm_out = _norm(cin)
        self.conv_out = nn.Conv2d(cin, out_ch, 3, 1, 1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        h = self.conv_in(z)
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(h)))
        for i in reversed(range(len(self.up))):
            lvl = self.up[i]
            for j, block in enumerate(lvl.block):
                h = block(h)
                if len(lvl.attn) > 0:
                    h = lvl.attn[j](h)
            if i != 0:
                h = lvl.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


class _Quantizer(nn.Module):
    """VectorQuantizer2 with `legacy=True`, beta 0.25, no remap."""

    def __init__(self, n_e: int, e_dim: int, beta: float = 0.25) -> None:
        super().__init__()
        self.e_dim, self.beta = e_dim, beta
        self.embedding = nn.Embedding(n_e, e_dim)

    def forward(self, z: torch.Tensor):
        z = z.permute(0, 2, 3, 1).contiguous()  # (B, H, W, C)
        zf = z.view(-1, self.e_dim)  # (N, C)
        e = self.embedding.weight
        d = (
            torch.sum(zf**2, dim=1, keepdim=True)
            + torch.sum(e**2, dim=1)
            - 2 * torch.einsum("bd,dn->bn", zf, e.t())
        )  # (N, K)
        idx = torch.argmin(d, dim=1)
        zq = self.embedding(idx).view(z.shape)
        loss = torch.mean((zq.detach() - z) ** 2) + self.beta * torch.mean((zq - z.detach()) ** 2)
        zq = z + (zq - z).detach()
        return zq.permute(0, 3, 1, 2).contiguous(), loss, (None, None, idx)

    def get_codebook_entry(self, idx: torch.Tensor, shape: Sequence[int]) -> torch.Tensor:
        zq = self.embedding(idx).view(shape)  # (B, H, W, C)
        return zq.permute(0, 3, 1, 2).contiguous()


class OriginalCodec(nn.Module):
    """The original VQModel's `encode` / `decode_code` path (inference, NCHW, fp32)."""

    def __init__(self, ddconfig: dict, n_embed: int, embed_dim: int) -> None:
        super().__init__()
        dd = dict(ddconfig)
        if not dd.get("resamp_with_conv", True) or dd.get("dropout", 0.0) != 0.0:
            raise ValueError("the benchmark's original path covers resamp_with_conv, dropout 0")
        common = dict(
            ch=dd["ch"],
            ch_mult=tuple(dd["ch_mult"]),
            num_res_blocks=dd["num_res_blocks"],
            attn_resolutions=tuple(dd["attn_resolutions"]),
            resolution=dd["resolution"],
            z_channels=dd["z_channels"],
        )
        self.encoder = _Encoder(in_channels=dd["in_channels"], double_z=dd["double_z"], **common)
        self.decoder = _Decoder(out_ch=dd["out_ch"], **common)
        self.quantize = _Quantizer(n_embed, embed_dim)
        self.quant_conv = nn.Conv2d(dd["z_channels"], embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, dd["z_channels"], 1)
        self.embed_dim = embed_dim

    @classmethod
    def from_vqmodel(cls, model: nn.Module) -> OriginalCodec:
        """Same weights as `model` (a `taming` VQModel), loaded strictly by name."""
        codec = cls(dict(model.ddconfig), model.quantize.vocab_size, model.embed_dim)
        sd = {k: v for k, v in model.state_dict().items() if not k.startswith("loss.")}
        codec.load_state_dict(sd, strict=True)
        return codec.eval()

    def encode(self, x: torch.Tensor):
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode_code(self, code_b: torch.Tensor) -> torch.Tensor:
        b, h, w = code_b.shape
        quant = self.quantize.get_codebook_entry(code_b.reshape(-1), (b, h, w, self.embed_dim))
        return self.decoder(self.post_quant_conv(quant))
