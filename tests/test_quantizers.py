"""Quantizer invariants: code round trips, legacy beta, straight-through, remap, EMA, Gumbel."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taming.quantize import EMAVectorQuantizer, GumbelQuantize, VectorQuantizer
from taming.quantize.vq import nearest_code


def _z(b=2, c=8, h=4, w=5, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g)


def test_nearest_code_matches_brute_force():
    g = torch.Generator().manual_seed(1)
    z = torch.randn(300, 16, generator=g)
    e = torch.randn(50, 16, generator=g)
    brute = torch.cdist(z.double(), e.double()).argmin(dim=1)
    assert torch.equal(nearest_code(z, e), brute)


@pytest.mark.parametrize("sane", [False, True])
def test_vq_indices_to_codes_round_trip(sane):
    vq = VectorQuantizer(32, 8, sane_index_shape=sane)
    vq.embedding.weight.data.normal_()
    z = _z()
    quant, loss, info = vq(z)
    b, c, h, w = z.shape
    if sane:
        assert info.indices.shape == (b, h, w)
    else:
        assert info.indices.shape == (b * h * w,)
    codes = vq.get_codebook_entry(info.indices.reshape(-1), shape=(b, h, w, c))
    # straight-through output z + (z_q - z) equals z_q up to rounding
    assert torch.allclose(quant, codes, atol=1e-6)
    # each quantized vector is the nearest codebook entry of its input
    flat = z.permute(0, 2, 3, 1).reshape(-1, c)
    assert torch.equal(info.indices.reshape(-1), torch.cdist(flat, vq.embedding.weight).argmin(1))
    assert info.perplexity is None and info.min_encodings is None


def test_vq_output_is_named_tuple_in_legacy_order():
    vq = VectorQuantizer(16, 8)
    out = vq(_z())
    quant, emb_loss, info = out
    assert out.quant is quant and out.loss is emb_loss and out.info is info
    assert info[2] is info.indices


def test_straight_through_gradient():
    vq = VectorQuantizer(16, 8)
    z = _z().requires_grad_(True)
    quant, _, _ = vq(z)
    g = torch.randn_like(quant)
    (quant * g).sum().backward()
    assert torch.allclose(z.grad, g)


@pytest.mark.parametrize("beta", [0.25, 0.6])
def test_legacy_versus_fixed_beta(beta):
    """Same loss value ((1 + beta) * mse); the gradients swap which term beta weighs."""
    z0 = _z()
    grads, values = {}, {}
    for legacy in (True, False):
        vq = VectorQuantizer(16, 8, beta=beta, legacy=legacy)
        vq.embedding.weight.data = torch.linspace(-1, 1, 16 * 8).view(16, 8)
        z = z0.clone().requires_grad_(True)
        quant, loss, _ = vq(z)
        loss.backward()
        grads[legacy] = (z.grad.clone(), vq.embedding.weight.grad.clone())
        values[legacy] = loss.item()
        mse = torch.mean((quant.detach() - z0) ** 2).item()
        assert loss.item() == pytest.approx((1 + beta) * mse, rel=1e-6)
    assert values[True] == pytest.approx(values[False], rel=1e-6)
    (gz_legacy, ge_legacy), (gz_fixed, ge_fixed) = grads[True], grads[False]
    # legacy: commitment (encoder) weight 1, codebook weight beta; fixed: the other way round
    assert torch.allclose(gz_fixed, beta * gz_legacy, atol=1e-7)
    assert torch.allclose(ge_legacy, beta * ge_fixed, atol=1e-7)


def test_remap_round_trip(tmp_path):
    used = np.array([3, 5, 7, 11, 13], dtype=np.int64)
    np.save(tmp_path / "used.npy", used)
    vq = VectorQuantizer(16, 4, remap=str(tmp_path / "used.npy"), unknown_index="extra")
    assert vq.re_embed == len(used) + 1
    inds = torch.tensor([[3, 5, 7], [11, 13, 2]])
    mapped = vq.remap_to_used(inds)
    assert mapped.tolist() == [[0, 1, 2], [3, 4, 5]]  # 2 is unknown -> the extra token 5
    back = vq.unmap_to_all(mapped)
    assert back.tolist() == [[3, 5, 7], [11, 13, 3]]  # the extra token maps to used[0]
    # the quantizer's indices are positions in `used` and decode back to the same codes
    z = _z(c=4)
    quant, _, info = vq(z)
    assert int(info.indices.max()) < vq.re_embed
    assert "used" in vq.state_dict()


def test_gumbel_deterministic_in_eval_and_codes_round_trip():
    q = GumbelQuantize(8, 6, n_embed=20, kl_weight=1e-2).eval()
    z = _z()
    out1, out2 = q(z), q(z)
    assert torch.equal(out1.info.indices, out2.info.indices)
    assert torch.equal(out1.info.indices, q.proj(z).argmax(1))
    b, _, h, w = z.shape
    codes = q.get_codebook_entry(out1.info.indices.reshape(-1), shape=(b, h, w, 6))
    assert torch.allclose(out1.quant, codes)
    # the original's stochastic eval is still available
    q.stochastic_eval = True
    torch.manual_seed(0)
    a = q(z).info.indices
    torch.manual_seed(1)
    assert not torch.equal(a, q(z).info.indices)


def test_gumbel_kl_and_interfaces():
    q = GumbelQuantize(8, 6, n_embed=20, kl_weight=0.5, use_vqinterface=False)
    z = _z()
    z_q, diff, ind = q(z)
    qy = torch.softmax(q.proj(z), dim=1)
    expected = 0.5 * torch.sum(qy * torch.log(qy * 20 + 1e-10), dim=1).mean()
    assert torch.allclose(diff, expected)
    assert ind.shape == (2, 4, 5)
    z_q.sum().backward()  # straight-through in training
    assert q.proj.weight.grad is not None and q.embed.weight.grad is not None


def test_ema_quantizer_updates_codebook_towards_data():
    torch.manual_seed(0)
    q = EMAVectorQuantizer(4, 2, beta=0.25, decay=0.5)
    assert {"embedding.weight", "embedding.cluster_size", "embedding.embed_avg"} <= set(
        q.state_dict()
    )
    centers = torch.tensor([[3.0, 0.0], [-3.0, 0.0], [0.0, 3.0], [0.0, -3.0]])
    q.embedding.weight.data = centers + 0.5
    q.embedding.embed_avg.data = q.embedding.weight.data.clone()
    x = centers[torch.arange(4).repeat_interleave(16)]  # (64, 2), 16 points per center
    z = x.view(4, 16, 2).permute(0, 2, 1).reshape(4, 2, 4, 4)
    q.train()
    for _ in range(30):
        quant, loss, info = q(z)
    assert torch.allclose(q.embedding.weight, centers, atol=1e-3)
    assert info.perplexity.item() == pytest.approx(4.0, rel=1e-4)
    q.eval()
    before = q.embedding.weight.clone()
    quant, loss, info = q(z)
    assert torch.equal(before, q.embedding.weight)  # no update in eval
    b, c, h, w = z.shape
    codes = q.get_codebook_entry(info.indices, shape=(b, h, w, c))
    assert torch.allclose(quant, codes, atol=1e-6)
    assert loss.item() == pytest.approx(0.25 * torch.mean((quant - z) ** 2).item(), rel=1e-5)
