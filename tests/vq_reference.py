"""Literal re-statements of other projects' VQ autoencoders, for the converter tests.

- `ldm_state_dict` / `ldm_forward`: latent-diffusion's `ldm.models.autoencoder.VQModel` key
  layout and forward (its `ldm/modules/diffusionmodules/model.py` Encoder/Decoder with vanilla
  attention, `VectorQuantizer2`), written as functions of the raw state dict.
- `LlamaGenVQ`: LlamaGen's `tokenizer/tokenizer_image/vq_model.py` VQModel as modules with its
  own names (`conv_blocks.{i}.res/attn`, `mid.{0,1,2}`, l2-normalised codebook,
  `codebook_used` buffer).

Nothing here imports taming: they are independent references.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# -- latent-diffusion, functional -------------------------------------------------------------


def _conv(sd, p, x, stride=1, padding=None):
    w = sd[p + ".weight"]
    pad = (w.shape[-1] // 2) if padding is None else padding
    return F.conv2d(x, w, sd[p + ".bias"], stride=stride, padding=pad)


def _norm(sd, p, x):
    return F.group_norm(x, 32, sd[p + ".weight"], sd[p + ".bias"], eps=1e-6)


def _swish(x):
    return x * torch.sigmoid(x)


def _resnet(sd, p, x):
    h = _conv(sd, p + ".conv1", _swish(_norm(sd, p + ".norm1", x)))
    h = _conv(sd, p + ".conv2", _swish(_norm(sd, p + ".norm2", h)))
    if p + ".nin_shortcut.weight" in sd:
        x = _conv(sd, p + ".nin_shortcut", x)
    return x + h


def _attn(sd, p, x):
    h = _norm(sd, p + ".norm", x)
    q, k, v = (_conv(sd, f"{p}.{n}", h) for n in "qkv")
    b, c, hh, ww = q.shape
    q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # b, hw, c
    w_ = torch.bmm(q, k.reshape(b, c, hh * ww)) * (int(c) ** (-0.5))
    w_ = F.softmax(w_, dim=2)
    o = torch.bmm(v.reshape(b, c, hh * ww), w_.permute(0, 2, 1)).reshape(b, c, hh, ww)
    return x + _conv(sd, p + ".proj_out", o)


def _mid(sd, p, h):
    h = _resnet(sd, p + ".mid.block_1", h)
    h = _attn(sd, p + ".mid.attn_1", h)
    return _resnet(sd, p + ".mid.block_2", h)


def ldm_encode(sd, dd, x):
    n = len(dd["ch_mult"])
    h = _conv(sd, "encoder.conv_in", x)
    for i in range(n):
        for j in range(dd["num_res_blocks"]):
            h = _resnet(sd, f"encoder.down.{i}.block.{j}", h)
            if f"encoder.down.{i}.attn.{j}.q.weight" in sd:
                h = _attn(sd, f"encoder.down.{i}.attn.{j}", h)
        if i != n - 1:
            h = _conv(sd, f"encoder.down.{i}.downsample.conv", F.pad(h, (0, 1, 0, 1)), 2, 0)
    h = _mid(sd, "encoder", h)
    h = _conv(sd, "encoder.conv_out", _swish(_norm(sd, "encoder.norm_out", h)))
    return _conv(sd, "quant_conv", h)


def ldm_quantize(sd, h):
    """VectorQuantizer2 (eval): nearest code by squared distance; (quant, ids (B, h, w))."""
    e = sd["quantize.embedding.weight"]
    b, c, hh, ww = h.shape
    z = h.permute(0, 2, 3, 1).reshape(-1, c)
    d = (z**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * z @ e.t()
    ids = d.argmin(1)
    return e[ids].view(b, hh, ww, c).permute(0, 3, 1, 2), ids.view(b, hh, ww)


def ldm_decode(sd, dd, quant):
    n = len(dd["ch_mult"])
    h = _conv(sd, "decoder.conv_in", _conv(sd, "post_quant_conv", quant))
    h = _mid(sd, "decoder", h)
    for i in reversed(range(n)):
        for j in range(dd["num_res_blocks"] + 1):
            h = _resnet(sd, f"decoder.up.{i}.block.{j}", h)
            if f"decoder.up.{i}.attn.{j}.q.weight" in sd:
                h = _attn(sd, f"decoder.up.{i}.attn.{j}", h)
        if i != 0:
            h = _conv(sd, f"decoder.up.{i}.upsample.conv", F.interpolate(h, scale_factor=2.0))
    return _conv(sd, "decoder.conv_out", _swish(_norm(sd, "decoder.norm_out", h)))


def ldm_state_dict(dd, n_embed, embed_dim, gen) -> dict[str, torch.Tensor]:
    """Random weights in latent-diffusion's VQModel layout (names and shapes from its source)."""
    sd: dict[str, torch.Tensor] = {}

    def conv(p, cin, cout, k):
        sd[p + ".weight"] = torch.randn(cout, cin, k, k, generator=gen) / (cin * k * k) ** 0.5
        sd[p + ".bias"] = 0.1 * torch.randn(cout, generator=gen)

    def norm(p, c):
        sd[p + ".weight"] = 1 + 0.1 * torch.randn(c, generator=gen)
        sd[p + ".bias"] = 0.1 * torch.randn(c, generator=gen)

    def resnet(p, cin, cout):
        norm(p + ".norm1", cin)
        conv(p + ".conv1", cin, cout, 3)
        norm(p + ".norm2", cout)
        conv(p + ".conv2", cout, cout, 3)
        if cin != cout:
            conv(p + ".nin_shortcut", cin, cout, 1)

    def attn(p, c):
        norm(p + ".norm", c)
        for n in ("q", "k", "v", "proj_out"):
            conv(f"{p}.{n}", c, c, 1)

    ch, mult, nrb, zc = dd["ch"], dd["ch_mult"], dd["num_res_blocks"], dd["z_channels"]
    res = dd["resolution"]
    conv("encoder.conv_in", dd["in_channels"], ch, 3)
    cin_mult = (1, *mult)
    cur = res
    for i, m in enumerate(mult):
        cin = ch * cin_mult[i]
        for j in range(nrb):
            resnet(f"encoder.down.{i}.block.{j}", cin, ch * m)
            cin = ch * m
            if cur in dd["attn_resolutions"]:
                attn(f"encoder.down.{i}.attn.{j}", cin)
        if i != len(mult) - 1:
            conv(f"encoder.down.{i}.downsample.conv", cin, cin, 3)
            cur //= 2
    top = ch * mult[-1]
    for part in ("encoder", "decoder"):
        resnet(f"{part}.mid.block_1", top, top)
        attn(f"{part}.mid.attn_1", top)
        resnet(f"{part}.mid.block_2", top, top)
    norm("encoder.norm_out", top)
    conv("encoder.conv_out", top, zc, 3)
    conv("decoder.conv_in", zc, top, 3)
    cin, cur = top, res // 2 ** (len(mult) - 1)
    for i in reversed(range(len(mult))):
        for j in range(nrb + 1):
            resnet(f"decoder.up.{i}.block.{j}", cin, ch * mult[i])
            cin = ch * mult[i]
            if cur in dd["attn_resolutions"]:
                attn(f"decoder.up.{i}.attn.{j}", cin)
        if i != 0:
            conv(f"decoder.up.{i}.upsample.conv", cin, cin, 3)
            cur *= 2
    norm("decoder.norm_out", ch * mult[0])
    conv("decoder.conv_out", ch * mult[0], dd["out_ch"], 3)
    conv("quant_conv", zc, embed_dim, 1)
    conv("post_quant_conv", embed_dim, zc, 1)
    sd["quantize.embedding.weight"] = torch.randn(n_embed, embed_dim, generator=gen)
    return sd


# -- LlamaGen, modules ------------------------------------------------------------------------


def _gn(c):
    return nn.GroupNorm(32, c, eps=1e-6, affine=True)


class _LGRes(nn.Module):
    def __init__(self, cin, cout):
        super().__init__()
        self.cin, self.cout = cin, cout
        self.norm1, self.conv1 = _gn(cin), nn.Conv2d(cin, cout, 3, 1, 1)
        self.norm2, self.dropout = _gn(cout), nn.Dropout(0.0)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1)
        if cin != cout:
            self.nin_shortcut = nn.Conv2d(cin, cout, 1, 1, 0)

    def forward(self, x):
        h = self.conv1(_swish(self.norm1(x)))
        h = self.conv2(self.dropout(_swish(self.norm2(h))))
        return (self.nin_shortcut(x) if self.cin != self.cout else x) + h


class _LGAttn(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.norm = _gn(c)
        self.q, self.k, self.v, self.proj_out = (nn.Conv2d(c, c, 1) for _ in range(4))

    def forward(self, x):
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        w_ = torch.bmm(q.reshape(b, c, -1).permute(0, 2, 1), k.reshape(b, c, -1))
        w_ = F.softmax(w_ * int(c) ** (-0.5), dim=2)
        o = torch.bmm(v.reshape(b, c, -1), w_.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(o)


class _Resample(nn.Module):
    def __init__(self, c, down):
        super().__init__()
        self.down = down
        self.conv = nn.Conv2d(c, c, 3, 2 if down else 1, 0 if down else 1)

    def forward(self, x):
        if self.down:
            return self.conv(F.pad(x, (0, 1, 0, 1)))
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class _LGEncoder(nn.Module):
    def __init__(self, ch_mult, z_channels, ch=128, nrb=2):
        super().__init__()
        self.nrb, n = nrb, len(ch_mult)
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        self.conv_blocks = nn.ModuleList()
        in_mult = (1, *ch_mult)
        for i in range(n):
            blk = nn.Module()
            blk.res, blk.attn = nn.ModuleList(), nn.ModuleList()
            cin = ch * in_mult[i]
            for _ in range(nrb):
                blk.res.append(_LGRes(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
                if i == n - 1:
                    blk.attn.append(_LGAttn(cin))
            if i != n - 1:
                blk.downsample = _Resample(cin, True)
            self.conv_blocks.append(blk)
        self.mid = nn.ModuleList([_LGRes(cin, cin), _LGAttn(cin), _LGRes(cin, cin)])
        self.norm_out, self.conv_out = _gn(cin), nn.Conv2d(cin, z_channels, 3, 1, 1)

    def forward(self, x):
        h = self.conv_in(x)
        for i, blk in enumerate(self.conv_blocks):
            for j in range(self.nrb):
                h = blk.res[j](h)
                if len(blk.attn) > 0:
                    h = blk.attn[j](h)
            if i != len(self.conv_blocks) - 1:
                h = blk.downsample(h)
        for m in self.mid:
            h = m(h)
        return self.conv_out(_swish(self.norm_out(h)))


class _LGDecoder(nn.Module):
    def __init__(self, ch_mult, z_channels, ch=128, nrb=2):
        super().__init__()
        self.nrb, n = nrb, len(ch_mult)
        cin = ch * ch_mult[-1]
        self.conv_in = nn.Conv2d(z_channels, cin, 3, 1, 1)
        self.mid = nn.ModuleList([_LGRes(cin, cin), _LGAttn(cin), _LGRes(cin, cin)])
        self.conv_blocks = nn.ModuleList()
        for i in reversed(range(n)):
            blk = nn.Module()
            blk.res, blk.attn = nn.ModuleList(), nn.ModuleList()
            for _ in range(nrb + 1):
                blk.res.append(_LGRes(cin, ch * ch_mult[i]))
                cin = ch * ch_mult[i]
                if i == n - 1:
                    blk.attn.append(_LGAttn(cin))
            if i != 0:
                blk.upsample = _Resample(cin, False)
            self.conv_blocks.append(blk)
        self.norm_out, self.conv_out = _gn(cin), nn.Conv2d(cin, 3, 3, 1, 1)

    def forward(self, z):
        h = self.conv_in(z)
        for m in self.mid:
            h = m(h)
        for i, blk in enumerate(self.conv_blocks):
            for j in range(self.nrb + 1):
                h = blk.res[j](h)
                if len(blk.attn) > 0:
                    h = blk.attn[j](h)
            if i != len(self.conv_blocks) - 1:
                h = blk.upsample(h)
        return self.conv_out(_swish(self.norm_out(h)))


class _LGQuantizer(nn.Module):
    def __init__(self, n_e, e_dim):
        super().__init__()
        self.n_e, self.e_dim = n_e, e_dim
        self.embedding = nn.Embedding(n_e, e_dim)
        self.register_buffer("codebook_used", torch.zeros(65536))

    def forward(self, z):
        z = torch.einsum("b c h w -> b h w c", z).contiguous()
        zf = F.normalize(z.view(-1, self.e_dim), p=2, dim=-1)
        z = F.normalize(z, p=2, dim=-1)
        e = F.normalize(self.embedding.weight, p=2, dim=-1)
        d = (zf**2).sum(1, keepdim=True) + (e**2).sum(1) - 2 * zf @ e.t()
        ids = d.argmin(1)
        z_q = e[ids].view(z.shape)
        z_q = z + (z_q - z).detach()
        return torch.einsum("b h w c -> b c h w", z_q), ids

    def get_codebook_entry(self, ids, shape):
        e = F.normalize(self.embedding.weight, p=2, dim=-1)
        return e[ids].reshape(shape[0], shape[2], shape[3], shape[1]).permute(0, 3, 1, 2)


class LlamaGenVQ(nn.Module):
    """LlamaGen's VQModel (ModelArgs: codebook_size, codebook_embed_dim, ch_mult, z_channels)."""

    def __init__(self, codebook_size, codebook_embed_dim, ch_mult, z_channels, ch=128):
        super().__init__()
        self.encoder = _LGEncoder(ch_mult, z_channels, ch)
        self.decoder = _LGDecoder(ch_mult, z_channels, ch)
        self.quantize = _LGQuantizer(codebook_size, codebook_embed_dim)
        self.quant_conv = nn.Conv2d(z_channels, codebook_embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(codebook_embed_dim, z_channels, 1)

    def encode(self, x):
        return self.quantize(self.quant_conv(self.encoder(x)))

    def decode(self, quant):
        return self.decoder(self.post_quant_conv(quant))

    def decode_code(self, ids, shape):
        return self.decode(self.quantize.get_codebook_entry(ids.reshape(-1), shape))
