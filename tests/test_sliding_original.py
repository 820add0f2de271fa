"""Sliding-window sampling against a literal re-implementation of the original's loop.

SPEC §5.5.3 (`scripts/sample_conditional.py`, `scripts/make_samples.py`): for every latent
position `(i, j)` in raster order the original takes a `16 x 16` window of the canvas and of the
condition's code grid, with the target at local position `(li, lj)`:

    li = i if i <= 8 else (16 - (h - i) if h - i < 8 else 8)        (lj likewise with w)
    patch  = canvas[:, i-li : i-li+16, j-lj : j-lj+16]              (256 tokens)
    cpatch = cond  [:, i-li : i-li+16, j-lj : j-lj+16]
    logits = transformer(cat(cpatch, patch)[:, :-1])[:, -256:]      -> (B, 16, 16, V)[li, lj]
    logits / temperature -> top_k_logits -> softmax -> multinomial -> canvas[:, i, j]

`original_sliding` below is that loop for any even window, written out with the original's
rule (not `window_start`), with one full forward per token. On a grid twice as wide as the
window every column offset `j - lj` from 0 to `w - window` occurs, so a crop that ignored the
column offset (or placed the target at the wrong local index) would draw other tokens.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from taming.sampling import sample_sliding_window
from taming.transformer.gpt import GPT
from tiny_net2net import N_LABELS, build_model


def original_local(i: int, size: int, window: int) -> int:
    half = window // 2
    if i <= half:
        return i
    if size - i < half:
        return window - (size - i)
    return half


def original_top_k_logits(logits: torch.Tensor, k: int) -> torch.Tensor:
    v, _ = torch.topk(logits, k)
    out = logits.clone()
    out[out < v[:, [-1]]] = -float("inf")
    return out


@torch.no_grad()
def original_sliding(
    gpt: GPT,
    cgrid: torch.Tensor,
    window: int,
    top_k: int | None,
    generator: torch.Generator,
    prefix: torch.Tensor | None = None,
    temperature: float = 1.0,
) -> torch.Tensor:
    """The original loop: `cgrid (B, h, w)` condition codes -> canvas `(B, h*w)`."""
    B, h, w = cgrid.shape
    idx = torch.zeros(B, h, w, dtype=torch.long)
    for i in range(h):
        li = original_local(i, h, window)
        for j in range(w):
            lj = original_local(j, w, window)
            r, c = i - li, j - lj
            patch = idx[:, r : r + window, c : c + window].reshape(B, -1)
            cpatch = cgrid[:, r : r + window, c : c + window].reshape(B, -1)
            if prefix is not None:
                cpatch = torch.cat((prefix, cpatch), dim=1)
            seq = torch.cat((cpatch, patch), dim=1)
            logits, _ = gpt(seq[:, :-1])
            logits = logits[:, -window * window :, :]
            logits = logits.reshape(B, window, window, -1)[:, li, lj, :]
            logits = logits / temperature
            if top_k is not None:
                logits = original_top_k_logits(logits, top_k)
            probs = F.softmax(logits, dim=-1)
            idx[:, i, j] = torch.multinomial(probs, num_samples=1, generator=generator)[:, 0]
    return idx.reshape(B, h * w)


def random_gpt(vocab: int, block: int, seed: int) -> GPT:
    """A GPT whose next-token distribution depends strongly on its input."""
    torch.manual_seed(seed)
    gpt = GPT(vocab_size=vocab, block_size=block, n_layer=2, n_head=2, n_embd=32)
    with torch.no_grad():
        for p in gpt.parameters():
            p.normal_(0.0, 0.3)
        for blk in gpt.blocks:
            blk.ln1.weight.add_(1.0)
            blk.ln2.weight.add_(1.0)
        gpt.ln_f.weight.add_(1.0)
    return gpt.eval()


@pytest.mark.parametrize(
    ("grid", "prefix", "use_cache"), [((4, 8), 0, True), ((6, 12), 0, True), ((4, 8), 1, False)]
)
def test_sliding_window_equals_the_original_loop(grid, prefix, use_cache):
    gpt = random_gpt(vocab=50, block=40, seed=3)
    B, window = 2, 4
    torch.manual_seed(1)
    cgrid = torch.randint(0, 50, (B, *grid))
    pre = torch.randint(0, 50, (B, prefix)) if prefix else None
    expected = original_sliding(gpt, cgrid, window, 12, torch.Generator().manual_seed(5), pre)
    ours = sample_sliding_window(
        gpt, grid, cond=pre, cond_grid=cgrid, window=(window, window), top_k=12,
        generator=torch.Generator().manual_seed(5), use_cache=use_cache,
    )  # fmt: skip
    assert ours.shape == (B, grid[0] * grid[1])
    assert torch.equal(ours, expected)


def test_the_original_loop_tells_column_offsets_apart():
    """The check above has teeth: the same loop with the column offset dropped from the crop
    (the bug a test must catch) draws other tokens on a 2x-wide grid."""
    gpt = random_gpt(vocab=50, block=40, seed=3)
    torch.manual_seed(1)
    cgrid = torch.randint(0, 50, (2, 4, 8))
    right = original_sliding(gpt, cgrid, 4, 12, torch.Generator().manual_seed(5))
    shifted = cgrid.clone()
    shifted[:, :, 4:] = cgrid[:, :, :4]  # what a crop at column 0 would see on the right half
    wrong = original_sliding(gpt, shifted, 4, 12, torch.Generator().manual_seed(5))
    assert not torch.equal(right, wrong)


def test_image_level_sliding_window_equals_the_original_loop():
    """`sample_images` of a segmentation model on a 2x-wide map takes the original route."""
    from taming.pipeline import sample_images

    model = build_model("seg")
    rng = torch.Generator().manual_seed(0)
    labels = torch.randint(0, N_LABELS, (8, 16), generator=rng)
    labels = labels.repeat_interleave(2, 0).repeat_interleave(2, 1)  # (16, 32) pixels
    seg = F.one_hot(labels, N_LABELS).permute(2, 0, 1)[None].float()  # (1, 5, 16, 32)
    images, tokens = sample_images(
        model, 1, cond=seg, top_k=10, generator=torch.Generator().manual_seed(9),
        return_tokens=True,
    )  # fmt: skip
    _, c_idx = model.encode_to_c(seg)  # (1, 8*16) codes of the condition
    cgrid = c_idx.reshape(1, 8, 16)
    expected = original_sliding(
        model.transformer, cgrid, 8, 10, torch.Generator().manual_seed(9)
    )  # the model's window: 16 px / f=2 = 8 codes
    assert torch.equal(tokens.reshape(1, -1), expected)
    decoded = model.decode_to_img(expected, (1, 8, 8, 16)).clamp(-1, 1)
    torch.testing.assert_close(images, decoded, rtol=0, atol=1e-5)
