"""GPT: original keys/init, parity with the original math and fixtures, KV-cached decoding."""

from __future__ import annotations

import copy
import math
import os
import pickle
import time

import pytest
import torch

from taming.compat.checkpoint import filter_state_dict, read_state_dict
from taming.transformer import cpu_matmul
from taming.transformer.cpu_matmul import quantize_int8
from taming.transformer.gpt import GPT, gpt_checkpoint_filter, legacy_attn_mask
from taming.transformer.kv_cache import KVCache
from taming.transformer.step_speed import step_seconds

FIXTURES = ("transformer_uncond", "transformer_class")


def make_gpt(
    n_unmasked: int = 0, std: float = 0.3, seed: int = 0, vocab: int = 37, block: int = 24, **kw
) -> GPT:
    """A tiny GPT, every tensor random (N(0, std); width-sized vectors shifted by +1 so the
    LayerNorm gains stay near 1), in eval mode."""
    torch.manual_seed(seed)
    cfg = dict(n_layer=2, n_head=4, n_embd=32) | kw
    gpt = GPT(vocab_size=vocab, block_size=block, n_unmasked=n_unmasked, **cfg)
    with torch.no_grad():
        for p in gpt.parameters():
            p.normal_(0.0, std).add_(1.0 if p.dim() == 1 and p.shape[0] == cfg["n_embd"] else 0.0)
    return gpt.eval()


def reference_logits(gpt: GPT, idx: torch.Tensor, embeddings: torch.Tensor | None = None):
    """The original minGPT math, written out: explicit float mask, manual softmax attention."""
    x = gpt.tok_emb(idx)
    if embeddings is not None:
        x = torch.cat((embeddings, x), dim=1)
    B, T, C = x.shape
    x = x + gpt.pos_emb[:, :T]
    mask = legacy_attn_mask(gpt.block_size, gpt.n_unmasked)[:, :, :T, :T]
    for blk in gpt.blocks:
        a, h = blk.attn, blk.ln1(x)
        nh = a.n_head
        q, k, v = (
            lin(h).view(B, T, nh, C // nh).transpose(1, 2) for lin in (a.query, a.key, a.value)
        )
        att = (q @ k.transpose(-2, -1)) * (1.0 / math.sqrt(k.size(-1)))
        att = att.masked_fill(mask == 0, float("-inf")).softmax(dim=-1)
        y = (att @ v).transpose(1, 2).reshape(B, T, C)
        x = x + a.proj(y)
        x = x + blk.mlp(blk.ln2(x))
    return gpt.head(gpt.ln_f(x))


# ----------------------------------------------------------------------------- keys and init


def test_state_dict_keys_and_shapes_match_original():
    V, T, d, L = 64, 48, 32, 2
    gpt = GPT(vocab_size=V, block_size=T, n_layer=L, n_head=4, n_embd=d)
    expected = {"tok_emb.weight": (V, d), "pos_emb": (1, T, d)}
    for n in range(L):
        p = f"blocks.{n}."
        for ln in ("ln1", "ln2"):
            expected |= {p + ln + ".weight": (d,), p + ln + ".bias": (d,)}
        for lin in ("key", "query", "value", "proj"):
            expected |= {f"{p}attn.{lin}.weight": (d, d), f"{p}attn.{lin}.bias": (d,)}
        expected |= {p + "mlp.0.weight": (4 * d, d), p + "mlp.0.bias": (4 * d,)}
        expected |= {p + "mlp.2.weight": (d, 4 * d), p + "mlp.2.bias": (d,)}
    expected |= {"ln_f.weight": (d,), "ln_f.bias": (d,), "head.weight": (V, d)}
    got = {k: tuple(v.shape) for k, v in gpt.state_dict().items()}
    assert got == expected  # no attn.mask buffer, head without bias


def test_init_follows_original():
    gpt = GPT(vocab_size=512, block_size=64, n_layer=2, n_head=4, n_embd=128)
    assert torch.count_nonzero(gpt.pos_emb) == 0
    for name, p in gpt.named_parameters():
        if name.endswith(("ln1.weight", "ln2.weight", "ln_f.weight")):
            assert torch.all(p == 1), name
        elif name.endswith("bias"):
            assert torch.all(p == 0), name
        elif name != "pos_emb":
            assert abs(p.std().item() - 0.02) < 0.002 and abs(p.mean().item()) < 0.002, name


def test_constructor_is_typed_config():
    with pytest.raises(TypeError):
        GPT(vocab_size=8, block_size=8, n_embed=32)  # unknown key fails
    with pytest.raises(ValueError):
        GPT(vocab_size=8, block_size=8, n_head=3, n_embd=32)


def test_original_state_dict_loads_strictly_after_filter():
    src = make_gpt(n_unmasked=3)
    legacy = {}
    for k, v in src.state_dict().items():  # original layout: mask buffer before attn.key
        if k.endswith("attn.key.weight"):
            legacy[k.replace("key.weight", "mask")] = legacy_attn_mask(24, 3)
        legacy[k] = v.clone()
    dst = GPT(vocab_size=37, block_size=24, n_layer=2, n_head=4, n_embd=32, n_unmasked=3)
    with pytest.raises(RuntimeError, match="attn.mask"):
        dst.load_state_dict(legacy, strict=True)
    dst.load_state_dict(gpt_checkpoint_filter(legacy, dst), strict=True)
    idx = torch.randint(0, 37, (2, 24))
    assert torch.equal(dst.eval()(idx)[0], src(idx)[0])
    # a mask that does not fit the config (n_unmasked 0 vs 3) is reported
    wrong = GPT(vocab_size=37, block_size=24, n_layer=2, n_head=4, n_embd=32)
    with pytest.raises(ValueError, match="n_unmasked"):
        gpt_checkpoint_filter(legacy, wrong)
    # prefixed keys (inside Net2NetTransformer) are filtered too
    prefixed = gpt_checkpoint_filter({"transformer." + k: v for k, v in legacy.items()})
    assert not any(k.endswith("mask") for k in prefixed) and len(prefixed) == len(legacy) - 2


# ----------------------------------------------------------------------------- full forward


@pytest.mark.parametrize("n_unmasked", [0, 5])
@pytest.mark.parametrize("n_emb", [0, 3])
def test_forward_matches_original_math(n_unmasked, n_emb):
    gpt = make_gpt(n_unmasked=n_unmasked)
    idx = torch.randint(0, 37, (3, 24 - n_emb))
    emb = torch.randn(3, n_emb, 32) if n_emb else None
    with torch.no_grad():
        logits, loss = gpt(idx, embeddings=emb)
        ref = reference_logits(gpt, idx, emb)
    assert loss is None and logits.shape == (3, 24, 37)
    torch.testing.assert_close(logits, ref, atol=1e-5, rtol=1e-5)


def test_causality_and_bidirectional_prefix():
    idx = torch.randint(0, 37, (1, 20))
    changed = idx.clone()
    changed[0, 2] = (idx[0, 2] + 1) % 37
    causal, prefix = make_gpt(), make_gpt(n_unmasked=4)
    with torch.no_grad():
        a, b = causal(idx)[0], causal(changed)[0]
        assert torch.equal(a[:, :2], b[:, :2]) and not torch.allclose(a[:, 2:], b[:, 2:])
        a, b = prefix(idx)[0], prefix(changed)[0]
        assert not torch.allclose(a[:, :2], b[:, :2])  # tokens 0, 1 see token 2
        changed[0, 10] = (idx[0, 10] + 1) % 37
        assert torch.allclose(prefix(changed)[0][:, :10], b[:, :10])  # but nothing later


def test_loss_and_every_parameter_gets_a_gradient():
    gpt = GPT(vocab_size=37, block_size=24, n_layer=2, n_head=4, n_embd=32, n_unmasked=2,
              embd_pdrop=0.1, resid_pdrop=0.1, attn_pdrop=0.1).train()  # fmt: skip
    idx = torch.randint(0, 37, (2, 16))
    emb = torch.randn(2, 2, 32)
    logits, loss = gpt(idx, embeddings=emb, targets=torch.randint(0, 37, (2, 18)))
    assert logits.shape == (2, 18, 37) and loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    for name, p in gpt.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"No gradient for {name}"


def test_too_long_sequence_raises_clearly():
    gpt = make_gpt()
    with pytest.raises(ValueError, match="block_size is 24"):
        gpt(torch.zeros(1, 25, dtype=torch.long))
    with pytest.raises(ValueError, match="block_size"):
        gpt(torch.zeros(1, 23, dtype=torch.long), embeddings=torch.zeros(1, 2, 32))


# ----------------------------------------------------------------------------- KV cache


def cached_logits(gpt, idx, chunks, emb=None, last_only=False, max_len=None):
    """Feed `idx` in chunks of the given sizes (the first with the embeddings)."""
    cache = gpt.setup_cache(idx.shape[0], max_len)
    outs, pos, t = [], 0, 0
    for n, size in enumerate(chunks):
        e = emb if n == 0 else None
        out = gpt.forward_cached(
            idx[:, t : t + size], pos, cache, embeddings=e, last_only=last_only
        )
        outs.append(out)
        pos += size + (0 if e is None else e.shape[1])
        t += size
    assert t == idx.shape[1]
    return torch.cat(outs, dim=1)


@pytest.mark.parametrize(
    ("n_unmasked", "n_emb", "chunks"),
    [
        (0, 0, [1] * 24),  # token by token from the first one
        (0, 0, [5, 1, 1, 3, 1, 7, 1, 5]),  # prefill + mixed chunk sizes (explicit masks)
        (6, 0, [6] + [1] * 18),  # bidirectional prefix fed at once
        (6, 0, [9, 2, 1, 1, 4, 7]),
        (0, 3, [1] * 21),  # prefix embeddings
        (4, 3, [2, 1, 3, 15]),  # prefix spans embeddings + tokens
    ],
)
@pytest.mark.parametrize("batch", [1, 3])  # 1: transposed-GEMV path of single rows on CPU
def test_cached_decoding_equals_full_forward_at_every_position(n_unmasked, n_emb, chunks, batch):
    gpt = make_gpt(n_unmasked=n_unmasked)
    idx = torch.randint(0, 37, (batch, 24 - n_emb))
    emb = torch.randn(batch, n_emb, 32) if n_emb else None
    with torch.no_grad():
        full = gpt(idx, embeddings=emb)[0]
    cached = cached_logits(gpt, idx, chunks, emb)
    assert cached.shape == full.shape and cached.dtype == torch.float32
    torch.testing.assert_close(cached, full, atol=1e-5, rtol=1e-5)
    last = cached_logits(gpt, idx, chunks, emb, last_only=True)
    ends = torch.tensor(chunks).cumsum(0) - 1 + (n_emb if n_emb else 0)
    torch.testing.assert_close(last, full[:, ends], atol=1e-5, rtol=1e-5)


def test_cache_rewinds_by_overwriting():
    gpt = make_gpt()
    a = torch.randint(0, 37, (2, 20))
    b = a.clone()
    b[:, 12:] = torch.randint(0, 37, (2, 8))
    cache = gpt.setup_cache(2, 20)
    gpt.forward_cached(a, 0, cache)
    out = gpt.forward_cached(b[:, 12:], 12, cache)  # rewrite positions 12..19
    torch.testing.assert_close(out, gpt(b)[0][:, 12:].detach(), atol=1e-5, rtol=1e-5)


def test_kv_cache_update_in_place():
    cache = KVCache(2, 4, 10, 8)
    ptr = cache.k_cache.data_ptr()
    k, v = torch.randn(2, 4, 3, 8), torch.randn(2, 4, 3, 8)
    ks, vs = cache.update(2, k, v)
    assert ks.shape == (2, 4, 5, 8) and cache.k_cache.data_ptr() == ptr
    assert torch.equal(ks[:, :, 2:], k) and torch.equal(vs[:, :, 2:], v)
    assert ks.data_ptr() == ptr  # a view, no copy
    with pytest.raises(IndexError):
        cache.update(9, k, v)


def test_kv_cache_append_one_token():
    cache = KVCache(2, 4, 10, 8)
    k, v = torch.randn(2, 4, 8), torch.randn(2, 4, 8)
    ks, vs = cache.append(6, k, v)
    assert ks.shape == (2, 4, 7, 8) and ks.data_ptr() == cache.k_cache.data_ptr()
    assert torch.equal(ks[:, :, 6], k) and torch.equal(vs[:, :, 6], v)
    assert not ks[:, :, 7:].any()
    for pos in (-1, 10):
        with pytest.raises(IndexError):
            cache.append(pos, k, v)


def test_one_token_step_matches_the_full_forward_in_float64():
    """`Block.step` (the lean one-token path) against the full-sequence pass, both float64:
    positions fed one at a time give the full forward's logits to float64 rounding."""
    gpt = make_gpt(block=24).double()
    idx = torch.randint(0, 37, (3, 24))
    full = gpt(idx)[0].detach()
    cache = gpt.setup_cache(3)
    steps = [gpt.forward_cached(idx[:, p : p + 1], p, cache) for p in range(24)]
    torch.testing.assert_close(torch.cat(steps, 1).double(), full, atol=1e-6, rtol=1e-6)


def test_forward_cached_guards():
    gpt = make_gpt(n_unmasked=5)
    cache = gpt.setup_cache(1)
    idx = torch.zeros(1, 8, dtype=torch.long)
    with pytest.raises(ValueError, match="n_unmasked"):
        gpt.forward_cached(idx[:, :3], 0, cache)  # prefix split over calls
    with pytest.raises(ValueError, match="block_size"):
        gpt.forward_cached(idx, 20, cache)
    with pytest.raises(ValueError):
        gpt.setup_cache(1, max_len=25)
    with pytest.raises(RuntimeError, match="eval"):
        gpt.train().forward_cached(idx, 0, cache)


def test_decode_weights_follow_parameter_updates():
    gpt, other = make_gpt(seed=0), make_gpt(seed=1)
    idx = torch.randint(0, 37, (2, 10))
    first = cached_logits(gpt, idx, [10])
    gpt.load_state_dict(other.state_dict())  # in-place copy: new versions
    torch.testing.assert_close(cached_logits(gpt, idx, [10]), other(idx)[0].detach())
    assert not torch.allclose(first, other(idx)[0].detach())
    with torch.no_grad():
        gpt.blocks[1].mlp[2].weight.mul_(0.5)  # an optimiser-like in-place step
    torch.testing.assert_close(cached_logits(gpt, idx, [10]), gpt(idx)[0].detach())
    gpt.release_decode_weights()
    assert not gpt._decode
    torch.testing.assert_close(cached_logits(gpt, idx, [1] * 10), gpt(idx)[0].detach())


@pytest.mark.parametrize("batch", [1, 3, 6, 40])
def test_cached_decoding_in_every_product_layout(batch):
    """Rows per Linear call of 1-4 (weight-major split), 5-128 (row-major split) and more
    (F.linear): every chunking gives the full forward's logits."""
    gpt = make_gpt(block=48)
    idx = torch.randint(0, 37, (batch, 48))
    full = gpt(idx)[0].detach()
    torch.testing.assert_close(cached_logits(gpt, idx, [1] * 48), full)
    torch.testing.assert_close(cached_logits(gpt, idx, [5, 2, 41]), full)
    clone = copy.deepcopy(gpt)  # the packed decode weights are a cache, not state
    assert gpt._decode and not clone._decode
    torch.testing.assert_close(cached_logits(pickle.loads(pickle.dumps(gpt)), idx, [48]), full)


def test_cached_decoding_with_width_not_divisible_by_the_split():
    gpt = make_gpt(n_head=3, n_embd=15, vocab=37)  # odd widths: F.linear instead of the split
    idx = torch.randint(0, 37, (1, 24))
    torch.testing.assert_close(cached_logits(gpt, idx, [3] + [1] * 21), gpt(idx)[0].detach())


# ----------------------------------------------------------------------------- low precision


@pytest.mark.parametrize(
    ("fmt", "tol"), [("bf16", 0.02), ("fp16", 0.004), ("int8", 0.03), ("w8a8", 0.06)]
)
def test_low_precision_decode_weights(fmt, tol):
    """bf16/fp16/int8/w8a8 decode products: logits within `tol` of fp32 (tiny random model with
    unit-scale logits), greedy tokens mostly agree; the fp32 path and the parameters are
    unchanged; `None` restores exact fp32."""
    gpt = make_gpt(std=0.1, vocab=64, block=64, n_layer=4, n_embd=64)
    idx = torch.randint(0, 64, (2, 64))
    ref = gpt(idx)[0].detach()
    gpt.to_low_precision(fmt, only_if_faster=False)
    assert gpt.decode_weight_format == fmt
    low = cached_logits(gpt, idx, [8] + [1] * 56)
    err = (low - ref).abs().max().item()
    assert 0 < err < tol * ref.abs().max().item()
    assert low.dtype == torch.float32
    assert (low.argmax(-1) == ref.argmax(-1)).float().mean() > 0.9
    assert all(p.dtype == torch.float32 for p in gpt.parameters())
    assert torch.equal(gpt(idx)[0], ref)
    gpt.to_low_precision(None)
    torch.testing.assert_close(cached_logits(gpt, idx, [64]), ref, atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError):
        gpt.to_low_precision("int4")


def test_int8_quantisation_is_per_channel_round_to_nearest():
    w = torch.randn(24, 40) * torch.logspace(-3, 1, 24)[:, None]
    wq, scale = quantize_int8(w)
    assert wq.dtype == torch.int8 and scale.shape == (24,)
    assert wq.abs().max() <= 127 and (wq.abs().amax(1) == 127).all()  # each row's peak uses 127
    deq = wq.double() * scale.double()[:, None]
    assert ((deq - w).abs() <= scale.double()[:, None] / 2 * (1 + 1e-4)).all()


@pytest.mark.parametrize("rows", [1, 5])
@pytest.mark.parametrize(("d_in", "fused_mm"), [(64, True), (64, False), (40, True)])
def test_int8_linear_equals_dequantised_product(rows, d_in, fused_mm, monkeypatch):
    """int8 DecodeLinear = float64 product with the dequantised weight: to bf16 accuracy with
    `aten._weight_int8pack_mm` (bf16 activations), to fp32 accuracy in the fallback (no such
    op, or an input width it cannot take)."""
    if not fused_mm:
        monkeypatch.setattr(cpu_matmul, "_int8_mm_works", lambda: False)
    fused = fused_mm and d_in % 32 == 0 and cpu_matmul._int8_mm_works()
    w, b, x = torch.randn(48, d_in), torch.randn(48), torch.randn(rows, d_in)
    lin = cpu_matmul.DecodeLinear([w[:16], w[16:]], [b[:16], b[16:]], "int8")
    wq, scale = quantize_int8(w)
    ref = x.double() @ (wq.double() * scale.double()[:, None]).t() + b.double()
    tol = 2e-2 * ref.abs().max().item() if fused else 1e-4
    torch.testing.assert_close(lin(x).double(), ref, atol=tol, rtol=0)


def test_w8a8_activation_rounding_is_per_tensor_with_zero_exact():
    x = torch.cat([torch.linspace(-0.7, 2.3, 101), torch.zeros(3)])[None]  # (1, 104)
    xq = cpu_matmul.fake_quant_activations(x).double()
    step = (2.3 + 0.7) / 127
    assert ((xq - x.double()).abs() <= step / 2 * (1 + 1e-5)).all()
    levels = (xq / step).round()
    assert torch.allclose(xq, levels * step, atol=1e-6)  # on the grid, which contains 0
    assert (xq[0, -3:] == 0).all() and levels.unique().numel() <= 128
    positive = torch.tensor([[1.0, 1.5, 2.0]])  # min(x, 0) = 0 is part of the range: step 2/127
    got = cpu_matmul.fake_quant_activations(positive)[0].double()
    expected = torch.tensor([64.0, 95.0, 127.0], dtype=torch.float64) * 2 / 127
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=0)


@pytest.mark.parametrize("rows", [1, 8])
@pytest.mark.parametrize("fbgemm", [True, False])
def test_w8a8_linear_equals_the_quantised_product(rows, fbgemm, monkeypatch):
    """w8a8 DecodeLinear = float64 product of the rounded input (one scale/zero point per
    call) and the per-channel int8 weight, plus the bias; by fbgemm where this torch has it
    (integer products: to float32 rounding), else by the float fallback. Its error against
    the exact product is what rounding both operands gives, and bounded by it."""
    if not fbgemm:
        monkeypatch.setattr(cpu_matmul, "_w8a8_pack", lambda *args: None)
    w, b = torch.randn(48, 64), torch.randn(48)
    x = torch.randn(rows, 64) * 3 + 0.5
    lin = cpu_matmul.DecodeLinear([w[:16], w[16:]], [b[:16], b[16:]], "w8a8")
    has_fbgemm = cpu_matmul._w8a8_pack(*quantize_int8(w), b) is not None
    assert (lin._w8a8 is not None) == has_fbgemm
    wq, scale = quantize_int8(w)
    wd = wq.double() * scale.double()[:, None]  # (48, 64)
    xq = cpu_matmul.fake_quant_activations(x).double()
    ref = xq @ wd.t() + b.double()
    y = lin(x).double()
    torch.testing.assert_close(y, ref, atol=1e-4 * ref.abs().max().item(), rtol=0)
    exact = x.double() @ w.double().t() + b.double()
    step = (x.max().clamp(min=0) - x.min().clamp(max=0)).item() / 127
    bound = (step / 2) * wd.abs().sum(1) + x.double().abs() @ (scale.double() / 2)[:, None].expand(
        48, 64
    ).t()  # (rows, 48): |x - xq| |W| + |x| |W - Wq s|
    assert ((y - exact).abs() <= bound * 1.001 + 1e-4).all()
    assert (y - exact).abs().max() > 0


def test_onednn_failure_falls_back(monkeypatch):
    """A torch whose private oneDNN ops fail still decodes (public ops), with the same math."""

    class Broken:
        def __getattr__(self, name):
            raise AttributeError(name)

    monkeypatch.setattr(torch.ops, "mkldnn", Broken())
    w, x = torch.randn(64, 32), torch.randn(6, 32)
    assert cpu_matmul._onednn_linear_weight(w) is None
    torch.testing.assert_close(cpu_matmul.DecodeLinear([w], None)(x), x @ w.t())


def test_slower_format_falls_back_to_fp32(monkeypatch, caplog):
    gpt = make_gpt()
    monkeypatch.setattr("taming.transformer.gpt.step_seconds", lambda gpt, fmt, rows: (1.0, 2.0))
    assert gpt.to_low_precision("bf16").decode_weight_format is None
    assert "slower than fp32" in caplog.text
    monkeypatch.setattr("taming.transformer.gpt.step_seconds", lambda gpt, fmt, rows: (2.0, 1.0))
    assert gpt.to_low_precision("int8").decode_weight_format == "int8"


def test_speed_probe_times_the_batch_it_will_decode(monkeypatch):
    """A format faster at one row but slower at eight (AVX2 bf16) is kept at batch 1 only."""
    seen = []

    def probe(gpt, fmt, rows):
        seen.append(rows)
        return (2.0, 1.0) if rows == 1 else (1.0, 2.0)

    monkeypatch.setattr("taming.transformer.gpt.step_seconds", probe)
    gpt = make_gpt()
    assert gpt.to_low_precision("bf16").decode_weight_format == "bf16"
    assert gpt.to_low_precision("bf16", rows=8).decode_weight_format is None
    assert seen == [1, 8]


def test_speed_probe_times_the_models_own_decode_step(monkeypatch):
    """The probe runs `forward_cached` one token at a time at the given rows, in fp32 and the
    format, and finds a format whose products are made slow (1 ms per int8 product, a sleep)
    slower: fp32 is kept, the model's mode, format and compiled step are as before, and only
    the chosen format's decode copies remain."""
    gpt = make_gpt().train()
    calls = []
    real_forward = GPT.forward_cached
    monkeypatch.setattr(
        GPT,
        "forward_cached",
        lambda self, idx, pos, cache, **kw: (
            calls.append((idx.shape, pos, self.training))
            or real_forward(self, idx, pos, cache, **kw)
        ),
    )
    real_int8 = cpu_matmul.DecodeLinear._int8
    monkeypatch.setattr(
        cpu_matmul.DecodeLinear, "_int8", lambda self, x: time.sleep(1e-3) or real_int8(self, x)
    )
    assert gpt.to_low_precision("int8", rows=3).decode_weight_format is None
    assert gpt.training and gpt._compiled_step is None
    assert {c[0] for c in calls} == {torch.Size([3, 1])} and not any(c[2] for c in calls)
    assert {c[1] for c in calls} == set(range(6))
    assert set(gpt._decode) == {None}  # the int8 copies are dropped, fp32 ones kept for use
    t32, t8 = step_seconds(gpt.eval(), "int8", rows=1)
    assert t8 > t32 + 9e-3 * 0.9  # the sleeps of one step: 2 layers x 4 products + the head
    assert gpt.decode_weight_format is None


def test_format_speed_times_the_given_rows(monkeypatch):
    """`format_speed` feeds each Linear inputs of `rows` rows, in both formats."""
    widths = []
    real = cpu_matmul.DecodeLinear.__call__
    monkeypatch.setattr(
        cpu_matmul.DecodeLinear, "__call__", lambda self, x: widths.append(x.shape) or real(self, x)
    )
    t32, t_fmt = cpu_matmul.format_speed("int8", [(32, 64), (64, 32)], rows=8)
    assert t32 > 0 and t_fmt > 0
    assert set(widths) == {torch.Size([8, 64]), torch.Size([8, 32])}


# ----------------------------------------------------------------------------- fixtures


def fixture_gpt(compat_dir, name):
    folder = compat_dir / name
    if not folder.is_dir():
        pytest.skip(f"fixture {folder} not found")
    sd = filter_state_dict(read_state_dict(folder / "model.ckpt"), prefix="transformer.")
    gpt = GPT(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=32)
    gpt.load_state_dict(gpt_checkpoint_filter(sd, gpt), strict=True)
    inputs = torch.load(folder / "inputs.pt", map_location="cpu")
    expected = torch.load(folder / "expected.pt", map_location="cpu")
    return gpt.eval(), inputs, expected


@pytest.mark.parametrize("name", FIXTURES)
def test_fixture_logits(compat_dir, name):
    gpt, inputs, expected = fixture_gpt(compat_dir, name)
    with torch.no_grad():
        torch.testing.assert_close(
            gpt(inputs["idx"])[0], expected["gpt_logits"], atol=1e-5, rtol=1e-5
        )
        # Net2NetTransformer.forward: logits of cat(c, z)[:, :-1] from the last cond position
        c, z = expected["c_indices"], expected["z_indices"]
        logits = gpt(torch.cat((c, z), 1)[:, :-1])[0][:, c.shape[1] - 1 :]
        torch.testing.assert_close(logits, expected["logits"], atol=1e-5, rtol=1e-5)
    cached = cached_logits(gpt, inputs["idx"], [1] * 64)
    torch.testing.assert_close(cached, expected["gpt_logits"], atol=1e-5, rtol=1e-5)


# ----------------------------------------------------------------------------- torch.compile


def test_compile_needs_a_cpp_compiler(monkeypatch):
    monkeypatch.setattr("taming.transformer.gpt.cpp_compiler", lambda: None)
    with pytest.raises(RuntimeError, match="C\\+\\+ compiler"):
        make_gpt().compile_decode()


@pytest.mark.parametrize(
    "fmt",
    [None, *(pytest.param(f, marks=pytest.mark.slow) for f in ("bf16", "int8", "w8a8"))],
    ids=["fp32", "bf16", "int8", "w8a8"],
)
def test_compiled_decode_step_equals_eager(fmt):
    """The compiled one-token step (`Block.step` with the format's decode weights, dynamic
    positions) is compiled once for every position and gives the eager step's logits (and,
    in fp32, the full forward's); pickling drops the compiled code."""
    from torch._dynamo.utils import counters

    from taming.transformer.gpt import cpp_compiler

    if cpp_compiler() is None:
        pytest.skip("no C++ compiler: inductor cannot build CPU kernels here")
    gpt = make_gpt(block=16).to_low_precision(fmt, only_if_faster=False)
    idx = torch.randint(0, 37, (2, 16))
    chunks = [3] + [1] * 13
    eager = cached_logits(gpt, idx, chunks)
    torch._dynamo.reset()
    counters.clear()
    gpt.compile_decode()
    compiled = cached_logits(gpt, idx, chunks)
    assert counters["stats"]["unique_graphs"] == 1  # one graph for positions 3..14
    # a shorter sequence in a cache set up for its own length reuses that graph
    short = cached_logits(gpt, idx[:, :9], [3] + [1] * 6, max_len=9)
    assert counters["stats"]["unique_graphs"] == 1
    torch.testing.assert_close(short, eager[:, :9], atol=1e-4, rtol=1e-4)
    torch.testing.assert_close(compiled, eager, atol=1e-4, rtol=1e-4)
    if os.environ.get("ATEN_CPU_CAPABILITY") != "avx2":  # see tests/test_compiling.py
        assert not gpt._compiled_step.failed  # the compiled step itself gave these logits
    if fmt is None:
        torch.testing.assert_close(compiled, gpt(idx)[0].detach())
    assert pickle.loads(pickle.dumps(gpt))._compiled_step is None
