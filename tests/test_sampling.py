"""Sampling: filters, parity with the original sampler, CFG, completion, sliding windows.

Exact token equality with the original (fixtures) relies on drawing the same way: one
`torch.multinomial(probs (B, vocab) float32, 1)` per step with the default generator after
`torch.manual_seed(0)`, on CPU with the torch version the fixtures were made with (2.13).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from taming.compat.checkpoint import filter_state_dict, read_state_dict
from taming.sampling import (
    complete_tokens,
    filter_logits,
    sample_sliding_window,
    sample_tokens,
    top_k_logits,
    top_k_top_p_filtering,
    top_p_logits,
    window_start,
)
from taming.transformer.gpt import GPT, gpt_checkpoint_filter

INF = float("-inf")


def tiny_gpt(vocab: int = 40, block: int = 40, std: float = 0.3, seed: int = 0, **kw) -> GPT:
    torch.manual_seed(seed)
    gpt = GPT(
        vocab_size=vocab, block_size=block, **({"n_layer": 2, "n_head": 2, "n_embd": 32} | kw)
    )
    with torch.no_grad():
        for p in gpt.parameters():
            p.normal_(0.0, std)
        for blk in gpt.blocks:
            blk.ln1.weight.add_(1.0)
            blk.ln2.weight.add_(1.0)
        gpt.ln_f.weight.add_(1.0)
    return gpt.eval()


def hf_top_p_reference(logits: torch.Tensor, p: float) -> torch.Tensor:
    """transformers 4.3.1 nucleus rule, one row at a time: keep the most likely token and every
    token whose predecessors' cumulative probability is <= p."""
    out = torch.full_like(logits, INF)
    for r in range(logits.shape[0]):
        order = torch.sort(logits[r], descending=True).indices
        cum = F.softmax(logits[r][order], dim=-1).cumsum(0)
        for i, tok in enumerate(order.tolist()):
            if i == 0 or cum[i - 1] <= p:
                out[r, tok] = logits[r, tok]
    return out


# ----------------------------------------------------------------------------- filters


def test_top_k_keeps_ties_at_the_threshold():
    logits = torch.tensor([[1.0, 3.0, 3.0, 2.0, 0.5]])
    assert top_k_logits(logits, 2).tolist() == [[INF, 3.0, 3.0, INF, INF]]
    assert top_k_logits(logits, 1).tolist() == [[INF, 3.0, 3.0, INF, INF]]
    assert top_k_logits(logits, 3).tolist() == [[INF, 3.0, 3.0, 2.0, INF]]
    assert torch.equal(top_k_logits(logits, 99), logits)  # clamped to the vocabulary
    assert logits[0, 0] == 1.0  # input untouched


def test_top_p_keeps_the_first_token_crossing_the_threshold():
    logits = torch.tensor([[0.5, 0.3, 0.15, 0.05]]).log()
    kept = lambda p: torch.isfinite(top_p_logits(logits, p))[0].tolist()  # noqa: E731
    assert kept(0.4) == [True, False, False, False]  # 0.5 crosses 0.4: kept alone
    assert kept(0.6) == [True, True, False, False]  # 0.5 < 0.6, 0.8 crosses
    assert kept(0.9) == [True, True, True, False]
    assert kept(0.0) == [True, False, False, False]  # the top token always survives
    assert torch.isfinite(top_p_logits(logits, 0.9, min_tokens_to_keep=4)).all()


@pytest.mark.parametrize("p", [0.0, 0.3, 0.9, 0.99, 1.0])
def test_top_p_matches_hf_rule(p):
    torch.manual_seed(0)
    logits = torch.randn(6, 50) * 3
    assert torch.equal(top_p_logits(logits, p), hf_top_p_reference(logits, p))


def test_hf_top_k_top_p_filtering_semantics():
    torch.manual_seed(0)
    logits = torch.randn(4, 1024) * 3
    # top-k first, then top-p over the survivors
    both = top_k_top_p_filtering(logits, top_k=100, top_p=0.8)
    assert torch.equal(both, hf_top_p_reference(top_k_logits(logits, 100), 0.8))
    assert torch.equal(top_k_top_p_filtering(logits, top_k=0, top_p=0.8), top_p_logits(logits, 0.8))
    # as in 4.3.1, top_p=1.0 still runs: float32 cumulative sums that round above 1 drop a
    # (negligible) tail -- the reason filter_logits(top_p=None) skips the pass entirely
    p1 = top_k_top_p_filtering(logits, top_k=0, top_p=1.0)
    assert torch.equal(p1, hf_top_p_reference(logits, 1.0))
    assert 0 < torch.isinf(p1).sum() < 100
    assert torch.equal(filter_logits(logits), logits)


def test_filter_logits_order_and_top_p_without_top_k():
    torch.manual_seed(0)
    logits = torch.randn(3, 64)
    out = filter_logits(logits, top_k=None, top_p=0.7, temperature=2.0)
    assert torch.equal(out, top_p_logits(logits / 2.0, 0.7))
    assert torch.isinf(out).any()  # applied although top_k is None
    out = filter_logits(logits, top_k=10, top_p=0.9, temperature=0.5)
    assert torch.equal(out, top_p_logits(top_k_logits(logits / 0.5, 10), 0.9))
    assert torch.equal(filter_logits(logits, top_k=0), logits)  # 0 disables top-k
    with pytest.raises(ValueError):
        filter_logits(logits, temperature=0.0)


# ----------------------------------------------------------------------------- original parity


def fixture(compat_dir, name):
    folder = compat_dir / name
    if not folder.is_dir():
        pytest.skip(f"fixture {folder} not found")
    sd = filter_state_dict(read_state_dict(folder / "model.ckpt"), prefix="transformer.")
    gpt = GPT(vocab_size=64, block_size=64, n_layer=2, n_head=2, n_embd=32)
    gpt.load_state_dict(gpt_checkpoint_filter(sd, gpt), strict=True)
    return gpt.eval(), torch.load(folder / "expected.pt", map_location="cpu")


@pytest.mark.parametrize("use_cache", [True, False])
@pytest.mark.parametrize("name", ["transformer_uncond", "transformer_class"])
def test_reproduces_original_sample(compat_dir, name, use_cache):
    gpt, exp = fixture(compat_dir, name)
    c, z = exp["c_indices"], exp["z_indices"]
    probs = []
    record = lambda step, p: probs.append(p.clone())  # noqa: E731
    torch.manual_seed(0)
    tokens = sample_tokens(gpt, c, 64, top_k=16, use_cache=use_cache, callback=record)
    assert torch.equal(tokens, exp["sample_tokens"])
    torch.testing.assert_close(torch.stack(probs), exp["sample_probs"], atol=1e-5, rtol=1e-5)

    probs.clear()
    torch.manual_seed(0)
    half = sample_tokens(gpt, c, 32, top_k=16, x=z[:, :32], use_cache=use_cache, callback=record)
    assert torch.equal(half, exp["sample_half_tokens"])  # the given half stays in the output
    torch.testing.assert_close(torch.stack(probs), exp["sample_half_probs"], atol=1e-5, rtol=1e-5)

    greedy = sample_tokens(gpt, c, 64, sample=False, use_cache=use_cache)
    assert torch.equal(greedy, exp["greedy_tokens"])


# ----------------------------------------------------------------------------- sampler


def test_generator_reproducible_and_global_rng_untouched():
    gpt = tiny_gpt()
    cond = torch.tensor([[1], [2], [3]])
    state = torch.get_rng_state()
    a = sample_tokens(gpt, cond, 20, top_k=8, generator=torch.Generator().manual_seed(5))
    b = sample_tokens(gpt, cond, 20, top_k=8, generator=torch.Generator().manual_seed(5))
    c = sample_tokens(gpt, cond, 20, top_k=8, generator=torch.Generator().manual_seed(6))
    assert torch.equal(torch.get_rng_state(), state)
    assert a.shape == (3, 20) and torch.equal(a, b) and not torch.equal(a, c)
    assert a.min() >= 0 and a.max() < 40


def test_cached_and_uncached_sampling_agree_with_top_p():
    gpt = tiny_gpt()
    cond = torch.tensor([[4, 1], [7, 2]])
    kw = dict(top_k=12, top_p=0.8, temperature=0.9)
    torch.manual_seed(3)
    a = sample_tokens(gpt, cond, 30, use_cache=True, **kw)
    torch.manual_seed(3)
    b = sample_tokens(gpt, cond, 30, use_cache=False, **kw)
    assert torch.equal(a, b)


def test_sampling_guards(capsys):
    gpt = tiny_gpt(block=16)
    cond = torch.zeros(1, 1, dtype=torch.long)
    with pytest.raises(ValueError, match="block_size"):
        sample_tokens(gpt, cond, 17)
    assert sample_tokens(gpt, cond, 16).shape == (1, 16)  # last token is never fed
    with pytest.raises(ValueError, match="null_cond"):
        sample_tokens(gpt, cond, 4, cfg_scale=2.0)
    with pytest.raises(ValueError):
        sample_tokens(gpt, torch.zeros(1, 0, dtype=torch.long), 4)
    sample_tokens(gpt, cond, 5, progress=True)
    assert "5/5" in capsys.readouterr().err


def test_low_precision_sampling_runs_close_to_fp32():
    gpt = tiny_gpt(vocab=64, block=64, std=0.1)
    cond = torch.tensor([[3], [9]])
    first = []
    keep = lambda step, p: first.append(p) if step == 0 else None  # noqa: E731
    ref = sample_tokens(gpt, cond, 1, top_k=10, callback=keep)
    gpt.to_low_precision("bf16", only_if_faster=False)
    low = sample_tokens(gpt, cond, 40, top_k=10, callback=keep)
    assert low.shape == (2, 40) and ref.shape == (2, 1)
    assert (first[0] - first[1]).abs().max() < 1e-2  # same first-step distribution


# ----------------------------------------------------------------------------- guidance


def test_cfg_scale_one_equals_conditional_sampling():
    gpt = tiny_gpt()
    cond, null = torch.tensor([[5], [6]]), torch.tensor([0])
    torch.manual_seed(0)
    plain = sample_tokens(gpt, cond, 25, top_k=10)
    torch.manual_seed(0)
    guided = sample_tokens(gpt, cond, 25, top_k=10, cfg_scale=1.0, null_cond=null)
    assert torch.equal(plain, guided)


def test_cfg_matches_naive_guidance_loop():
    gpt = tiny_gpt()
    cond, null, scale = torch.tensor([[5, 1], [6, 2]]), torch.tensor([[0, 0]]), 3.0
    torch.manual_seed(0)
    guided = sample_tokens(gpt, cond, 20, top_k=10, cfg_scale=scale, null_cond=null)

    torch.manual_seed(0)
    seq = torch.cat((cond, null.expand(2, 2)))
    with torch.no_grad():
        for _ in range(20):
            logits = gpt(seq)[0][:, -1]
            lc, lu = logits[:2], logits[2:]
            probs = F.softmax(top_k_logits(lu + scale * (lc - lu), 10), dim=-1)
            tok = torch.multinomial(probs, 1)
            seq = torch.cat((seq, tok.repeat(2, 1)), dim=1)
    assert torch.equal(guided, seq[:2, 2:])
    torch.manual_seed(0)
    assert not torch.equal(guided, sample_tokens(gpt, cond, 20, top_k=10))


# ----------------------------------------------------------------------------- completion


def test_completion_with_top_half_equals_prefix_sampling():
    gpt = tiny_gpt()
    cond = torch.tensor([[1], [2]])
    given = torch.randint(0, 40, (2, 24))
    known = torch.arange(24) < 12
    torch.manual_seed(0)
    done = complete_tokens(gpt, cond, given, known, top_k=10)
    torch.manual_seed(0)
    ref = sample_tokens(gpt, cond, 12, top_k=10, x=given[:, :12])
    assert torch.equal(done, ref) and torch.equal(done[:, :12], given[:, :12])


@pytest.mark.parametrize("per_row", [False, True])
def test_completion_keeps_known_tokens_anywhere(per_row):
    gpt = tiny_gpt()
    cond = torch.tensor([[1], [2], [3]])
    given = torch.randint(0, 40, (3, 30))
    torch.manual_seed(1)
    known = torch.rand(3, 30) < 0.5 if per_row else torch.rand(30) < 0.5
    known_b = known.expand(3, 30)
    draws = []
    count = lambda step, p: draws.append(step)  # noqa: E731
    torch.manual_seed(0)
    done = complete_tokens(gpt, cond, given, known, top_k=10, callback=count)
    assert torch.equal(done[known_b], given[known_b])
    assert not torch.equal(done[~known_b], given[~known_b])
    assert len(draws) == int((~known_b.all(0)).sum())  # all-known positions cost no draw
    torch.manual_seed(0)
    naive = complete_tokens(gpt, cond, given, known, top_k=10, use_cache=False)
    assert torch.equal(done, naive)


def test_fully_known_completion_draws_nothing():
    gpt = tiny_gpt()
    given = torch.randint(0, 40, (2, 10))
    state = torch.get_rng_state()
    out = complete_tokens(gpt, torch.tensor([[1], [2]]), given, torch.ones(10, dtype=torch.bool))
    assert torch.equal(out, given) and torch.equal(torch.get_rng_state(), state)


# ----------------------------------------------------------------------------- sliding window


def original_local(i: int, size: int) -> int:
    """The original scripts' rule for 16-token windows."""
    if i <= 8:
        return i
    if size - i < 8:
        return 16 - (size - i)
    return 8


@pytest.mark.parametrize("size", [16, 17, 20, 32, 48])
def test_window_start_is_the_original_rule(size):
    assert [window_start(i, size, 16) for i in range(size)] == [
        i - original_local(i, size) for i in range(size)
    ]


class TokenCounter:
    """Counts the tokens the GPT processes through either path."""

    def __init__(self, gpt: GPT) -> None:
        self.tokens = self.calls = 0
        self._fwd, self._cached = gpt.forward, gpt.forward_cached
        gpt.forward, gpt.forward_cached = self.forward, self.forward_cached

    def forward(self, idx, *args, **kwargs):
        self.tokens += idx.shape[1]
        self.calls += 1
        return self._fwd(idx, *args, **kwargs)

    def forward_cached(self, idx, *args, **kwargs):
        self.tokens += idx.shape[1]
        self.calls += 1
        return self._cached(idx, *args, **kwargs)


SLIDING_CASES = {
    "grid": dict(cond_grid=True, prefix=0),
    "prefix": dict(cond_grid=False, prefix=2),
    "both": dict(cond_grid=True, prefix=1),
}


@pytest.mark.parametrize("case", list(SLIDING_CASES))
def test_sliding_window_equals_naive_loop_and_uses_the_cache(case):
    spec = SLIDING_CASES[case]
    gpt = tiny_gpt(vocab=50, block=40)
    B, (h, w) = 2, (6, 10)
    torch.manual_seed(7)
    kw = dict(window=(4, 4), top_k=12)
    if spec["cond_grid"]:
        kw["cond_grid"] = torch.randint(0, 50, (B, h, w))
    if spec["prefix"]:
        kw["cond"] = torch.randint(0, 50, (B, spec["prefix"]))
    runs = {}
    for use_cache in (True, False):
        counter = TokenCounter(gpt)
        torch.manual_seed(0)
        runs[use_cache] = sample_sliding_window(gpt, (h, w), use_cache=use_cache, **kw)
        runs[use_cache, "tokens"], runs[use_cache, "calls"] = counter.tokens, counter.calls
    assert runs[True].shape == (B, h * w)
    assert torch.equal(runs[True], runs[False])
    assert runs[False, "calls"] == runs[True, "calls"] == h * w  # one call per token
    assert runs[True, "tokens"] < 0.6 * runs[False, "tokens"]


def test_sliding_window_on_a_2x_wide_grid():
    gpt = tiny_gpt(vocab=50, block=40)
    cgrid = torch.randint(0, 50, (1, 4, 8))
    counter = TokenCounter(gpt)
    torch.manual_seed(0)
    out = sample_sliding_window(gpt, (4, 8), cond_grid=cgrid, window=(4, 4), top_k=12)
    assert out.shape == (1, 32)
    # Window columns per target column j: 0,0,0,1,2,3,4,4. Row i (context 16 + 4i tokens
    # before the target's row): a 16+4i prefill at j=0, one token at j=1, 2, a (18+4i)-token
    # prefill at j=3..6 (the window moved), one token at j=7: 91 + 20i tokens per row.
    assert counter.calls == 32
    assert counter.tokens == sum(91 + 20 * i for i in range(4)) == 484  # naive: 32 * 31 = 992
    torch.manual_seed(0)
    assert torch.equal(
        out,
        sample_sliding_window(
            gpt, (4, 8), cond_grid=cgrid, window=(4, 4), top_k=12, use_cache=False
        ),
    )


def test_sliding_window_of_grid_size_is_plain_cached_sampling():
    gpt = tiny_gpt(vocab=50, block=40)
    cond, cgrid = torch.randint(0, 50, (2, 1)), torch.randint(0, 50, (2, 4, 4))
    counter = TokenCounter(gpt)
    torch.manual_seed(0)
    a = sample_sliding_window(gpt, (4, 4), cond=cond, cond_grid=cgrid, window=(4, 4), top_k=9)
    assert counter.tokens == 17 + 15  # one prefill of the context, then one token per step
    torch.manual_seed(0)
    b = sample_tokens(gpt, torch.cat((cond, cgrid.view(2, -1)), 1), 16, top_k=9)
    assert torch.equal(a, b)


def test_sliding_window_guidance_of_grid_size_equals_guided_sampling():
    gpt = tiny_gpt(vocab=50, block=40)
    cond, cgrid = torch.randint(0, 50, (2, 1)), torch.randint(0, 50, (2, 4, 4))
    null = torch.full((17,), 3)
    torch.manual_seed(0)
    a = sample_sliding_window(
        gpt, (4, 4), cond=cond, cond_grid=cgrid, window=(4, 4), top_k=9, cfg_scale=2.5,
        null_cond=null,
    )  # fmt: skip
    torch.manual_seed(0)
    full = torch.cat((cond, cgrid.view(2, -1)), 1)
    b = sample_tokens(gpt, full, 16, top_k=9, cfg_scale=2.5, null_cond=null)
    assert torch.equal(a, b)


def test_sliding_window_guidance_on_a_2x_wide_grid():
    gpt = tiny_gpt(vocab=50, block=40)
    cgrid, null = torch.randint(0, 50, (2, 4, 8)), torch.full((1, 16), 3)
    kw = dict(cond_grid=cgrid, window=(4, 4), top_k=12, null_cond=null)
    out = {}
    for use_cache, scale in ((True, 1.0), (True, 3.0), (False, 3.0)):
        torch.manual_seed(0)
        out[use_cache, scale] = sample_sliding_window(
            gpt, (4, 8), use_cache=use_cache, cfg_scale=scale, **kw
        )
    torch.manual_seed(0)
    plain = sample_sliding_window(gpt, (4, 8), cond_grid=cgrid, window=(4, 4), top_k=12)
    assert torch.equal(out[True, 1.0], plain)  # scale 1: no unconditional pass
    assert torch.equal(out[True, 3.0], out[False, 3.0])  # the cache schedule holds for both
    assert out[True, 3.0].shape == (2, 32) and not torch.equal(out[True, 3.0], plain)
    with pytest.raises(ValueError, match="needs null_cond"):
        sample_sliding_window(gpt, (4, 8), cond_grid=cgrid, window=(4, 4), cfg_scale=2.0)
    with pytest.raises(ValueError, match="null_cond has shape"):
        sample_sliding_window(
            gpt, (4, 8), cond_grid=cgrid, window=(4, 4), cfg_scale=2.0, null_cond=null[:, :5]
        )


def test_sliding_window_completion_keeps_tokens():
    gpt = tiny_gpt(vocab=50, block=40)
    cgrid = torch.randint(0, 50, (2, 6, 8))
    given = torch.randint(0, 50, (2, 48))
    known = torch.arange(48) < 24
    out = {}
    for use_cache in (True, False):
        torch.manual_seed(0)
        out[use_cache] = sample_sliding_window(
            gpt, (6, 8), cond_grid=cgrid, window=(4, 4), tokens=given, known=known,
            use_cache=use_cache,
        )  # fmt: skip
    assert torch.equal(out[True], out[False])
    assert torch.equal(out[True][:, :24], given[:, :24])
    assert not torch.equal(out[True][:, 24:], given[:, 24:])


def test_sliding_window_guards():
    gpt = tiny_gpt(vocab=50, block=20)
    with pytest.raises(ValueError, match="smaller than the window"):
        sample_sliding_window(gpt, (3, 8), cond=torch.zeros(1, 1, dtype=torch.long), window=(4, 4))
    with pytest.raises(ValueError, match="block_size"):
        sample_sliding_window(
            gpt, (4, 4), cond_grid=torch.zeros(1, 16, dtype=torch.long), window=(4, 4)
        )
    with pytest.raises(ValueError, match="conditioning"):
        sample_sliding_window(
            gpt, (4, 4), tokens=torch.zeros(1, 16, dtype=torch.long), window=(4, 4)
        )
