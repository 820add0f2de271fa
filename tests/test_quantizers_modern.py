"""Modern quantizers: improved VQ options, FSQ, LFQ, BSQ against literal formulas and peers.

References: the papers' formulas re-stated in float64 NumPy/Python (FSQ appendix A.1, MAGVIT-v2
Eq. 5, the rotation trick's Householder matrix, Laplace-smoothed EMA), brute-force nearest
neighbours, and vector-quantize-pytorch (when installed: `pip install -e .[peers]`).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from taming.quantize import BSQ, FSQ, LFQ, ImprovedVectorQuantizer
from taming.quantize.entropy import entropy_penalty
from taming.quantize.kmeans import kmeans
from taming.quantize.rotation import rotation_trick


def _z(b=2, c=8, h=4, w=5, seed=0, scale=1.0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, c, h, w, generator=g) * scale


def _flat(z):
    return z.permute(0, 2, 3, 1).reshape(-1, z.shape[1])  # (B*H*W, C), raster order


FAR = [0.0, -0.0, 1e3, -1e3, 1e30, -1e30, float("inf"), float("-inf")]


def _with_far_values(z: torch.Tensor) -> torch.Tensor:
    """z with some entries far outside any bound (and exact zeros)."""
    z = z.clone()
    flat = z.view(-1)
    for i, v in enumerate(FAR * 3):
        flat[(7 * i + 3) % flat.numel()] = v
    return z


# -- one interface ---------------------------------------------------------------------------

QUANTIZERS = {
    "vq_l2": lambda: ImprovedVectorQuantizer(64, 8, l2_norm=True),
    "vq_factorised": lambda: ImprovedVectorQuantizer(64, 8, codebook_dim=3, l2_norm=True),
    "vq_all": lambda: ImprovedVectorQuantizer(
        64,
        8,
        codebook_dim=4,
        l2_norm=True,
        kmeans_init=True,
        restart_unused_after=1,
        ema=True,
        entropy_weight=0.1,
        rotation_trick=True,
    ),
    "vq_plain_rotation": lambda: ImprovedVectorQuantizer(64, 8, rotation_trick=True),
    "fsq": lambda: FSQ([8, 5, 5, 5]),
    "lfq": lambda: LFQ(2**6),
    "bsq": lambda: BSQ(2**6),
}


def _channels(q) -> int:
    return q.embed_dim


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_ids_to_codes_round_trip_and_deterministic_eval(name):
    torch.manual_seed(0)
    q = QUANTIZERS[name]()
    z = _z(c=_channels(q), scale=2.0)
    q.train()
    q(z)  # k-means / restart / EMA act once
    q.eval()
    state = {k: v.clone() for k, v in q.state_dict().items()}
    quant, loss, info = q(z)
    b, _, h, w = z.shape
    assert info.indices.shape == (b, h, w)
    assert info.indices.dtype == torch.long
    assert 0 <= int(info.indices.min()) and int(info.indices.max()) < q.vocab_size
    codes = q.get_codebook_entry(info.indices.reshape(-1), shape=(b, h, w, q.embed_dim))
    assert codes.shape == quant.shape == z.shape
    torch.testing.assert_close(codes, quant, rtol=0, atol=1e-6)
    # eval is deterministic and leaves every buffer alone
    again = q(z)
    assert torch.equal(again.info.indices, info.indices) and torch.equal(again.quant, quant)
    for k, v in q.state_dict().items():
        assert torch.equal(v, state[k]), k
    assert torch.isfinite(loss)


@pytest.mark.parametrize("name", sorted(QUANTIZERS))
def test_gradients_reach_the_encoder(name):
    torch.manual_seed(0)
    q = QUANTIZERS[name]().train()
    d = q.embed_dim
    encoder = torch.nn.Conv2d(3, d, 3, padding=1)
    x = torch.randn(2, 3, 6, 6)
    quant, loss, _ = q(encoder(x))
    (quant.square().mean() + loss).backward()
    g = encoder.weight.grad
    assert g is not None and torch.isfinite(g).all() and g.abs().sum() > 0


def test_straight_through_gradients_are_the_identity():
    g = _z(c=6, seed=3)
    for q in (ImprovedVectorQuantizer(32, 6, l2_norm=False), LFQ(64, 0.0, 0.0)):
        z = _z(c=6).requires_grad_(True)
        quant, _, _ = q.train()(z)
        (quant * g).sum().backward()
        torch.testing.assert_close(z.grad, g)


# -- improved VQ ------------------------------------------------------------------------------


def test_l2_ids_are_the_nearest_unit_code_and_codes_are_unit_vectors():
    q = ImprovedVectorQuantizer(50, 8, l2_norm=True).eval()
    q.embedding.weight.data.normal_()
    z = _z(scale=3.0)
    quant, _, info = q(z)
    zn = F.normalize(_flat(z).double(), dim=1)
    en = F.normalize(q.embedding.weight.double(), dim=1)
    assert torch.equal(info.indices.reshape(-1), torch.cdist(zn, en).argmin(1))
    torch.testing.assert_close(quant.norm(dim=1), torch.ones(2, 4, 5))


def test_factorised_lookup_projects_down_and_back():
    q = ImprovedVectorQuantizer(40, 16, codebook_dim=4).eval()
    q.embedding.weight.data.normal_()
    z = _z(c=16)
    quant, _, info = q(z)
    low = _flat(z).double() @ q.project_in.weight.double().t() + q.project_in.bias.double()
    ids = torch.cdist(low, q.embedding.weight.double()).argmin(1)
    assert torch.equal(info.indices.reshape(-1), ids)
    up = q.embedding.weight.double()[ids] @ q.project_out.weight.double().t()
    up = up + q.project_out.bias.double()
    torch.testing.assert_close(_flat(quant).double(), up, rtol=1e-5, atol=1e-6)
    assert q.embedding.weight.shape == (40, 4) and q.vocab_size == 40 and q.embed_dim == 16


def test_loss_is_the_vqvae_loss_and_ema_keeps_only_commitment():
    z = _z()
    q = ImprovedVectorQuantizer(16, 8, beta=0.3).train()
    q.embedding.weight.data.normal_()
    quant, loss, _ = q(z)
    mse = torch.mean((quant.detach() - z) ** 2)
    torch.testing.assert_close(loss, 1.3 * mse)
    qe = ImprovedVectorQuantizer(16, 8, beta=0.3, ema=True).eval()
    quant, loss, _ = qe(z)
    torch.testing.assert_close(loss, 0.3 * torch.mean((quant - z) ** 2))
    assert not any(p.requires_grad for n, p in qe.named_parameters() if "embedding" in n)
    assert "embedding.weight" in qe.state_dict() and not list(qe.parameters())


def test_ema_update_equals_the_laplace_smoothed_closed_form():
    decay, eps, k = 0.9, 1e-5, 6
    q = ImprovedVectorQuantizer(k, 3, ema=True, ema_decay=decay, ema_eps=eps)
    w0 = torch.randn(k, 3, dtype=torch.float64)
    q.embedding.set_codes(torch.arange(k), w0.float())
    z = _z(1, 3, 4, 4, seed=5)
    _, _, info = q.train()(z)
    ids = info.indices.reshape(-1).numpy()
    zf = _flat(z).double().numpy()
    n_k = np.bincount(ids, minlength=k).astype(np.float64)
    s_k = np.zeros((k, 3))
    np.add.at(s_k, ids, zf)
    size = decay * 1.0 + (1 - decay) * n_k
    total = decay * w0.float().double().numpy() + (1 - decay) * s_k
    n = size.sum()
    expected = total / ((size + eps) / (n + k * eps) * n)[:, None]
    np.testing.assert_allclose(q.embedding.weight.double().numpy(), expected, rtol=1e-5, atol=1e-6)


def _clusters(n_centres=16, per=64, dim=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(n_centres, dim, generator=g) * 4
    pts = centres.repeat_interleave(per, 0) + 0.3 * torch.randn(n_centres * per, dim, generator=g)
    return pts[torch.randperm(pts.shape[0], generator=g)]  # (N, dim)


@pytest.mark.parametrize("l2", [False, True])
def test_kmeans_init_lowers_the_initial_quantisation_error(l2):
    pts = _clusters()
    z = pts.T.reshape(1, 8, 32, 32)  # (1, D, 32, 32) from (1024, D)
    errors = {}
    for init in (False, True):
        torch.manual_seed(0)
        q = ImprovedVectorQuantizer(16, 8, l2_norm=l2, kmeans_init=init)
        q.train()(z)  # the first training batch initialises the codebook
        quant, _, _ = q.eval()(z)
        target = F.normalize(z, dim=1) if l2 else z
        errors[init] = float(torch.mean((quant.detach() - target) ** 2))
    assert errors[True] < 0.2 * errors[False], errors


def _inertia(pts, centroids):
    return float(torch.cdist(pts.double(), centroids.double()).min(1).values.pow(2).sum())


def test_kmeans_is_lloyds_fixed_point_and_lowers_the_objective():
    pts = _clusters(n_centres=5, per=40, dim=3, seed=2)
    runs = {
        iters: kmeans(pts, 5, iters=iters, generator=torch.Generator().manual_seed(0))
        for iters in (1, 3, 30)
    }
    inertia = [_inertia(pts, runs[i][0]) for i in (1, 3, 30)]
    assert inertia[0] >= inertia[1] >= inertia[2]
    centroids, counts = runs[30]
    assert counts.sum() == 200
    assign = torch.cdist(pts, centroids).argmin(1)  # converged: each centroid is its mean
    for k in range(5):
        if counts[k] > 0:
            torch.testing.assert_close(centroids[k], pts[assign == k].mean(0))


def test_dead_codes_restart_onto_batch_encodings():
    torch.manual_seed(0)
    q = ImprovedVectorQuantizer(32, 4, restart_unused_after=2).train()
    z = _z(2, 4, 4, 4, seed=1, scale=2.0)
    flat = _flat(z)
    _, _, info = q(z)
    used_before = set(info.indices.reshape(-1).tolist())
    q(z)  # second unused step: the dead codes restart now
    w = q.embedding.weight.detach()
    dead = [i for i in range(32) if i not in used_before]
    assert dead
    for i in dead:  # every restarted code is one of the batch's encodings
        assert (w[i] == flat).all(dim=1).any()
    _, _, info = q.eval()(z)
    assert len(set(info.indices.reshape(-1).tolist())) > len(used_before)


def test_entropy_penalty_equals_the_literal_formula():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(50, 7, generator=g, dtype=torch.float64) * 3
    p = np.exp(logits.numpy())
    p /= p.sum(1, keepdims=True)
    per = -(p * np.log(p)).sum(1).mean()
    avg = p.mean(0)
    expected = per - 0.7 * -(avg * np.log(avg)).sum()
    assert float(entropy_penalty(logits, 0.7)) == pytest.approx(expected, rel=1e-5)


def test_vq_entropy_term_uses_the_softmax_of_scaled_distances():
    z = _z(1, 4, 3, 3)
    q = ImprovedVectorQuantizer(10, 4, entropy_weight=0.5, entropy_temperature=0.7).train()
    q.embedding.weight.data.normal_()
    quant, loss, _ = q(z)
    d = torch.cdist(_flat(z).double(), q.embedding.weight.detach().double()).pow(2)
    penalty = entropy_penalty(-d / 0.7)
    expected = 1.25 * torch.mean((quant.detach().double() - z.double()) ** 2) + 0.5 * penalty
    assert float(loss.detach()) == pytest.approx(float(expected), rel=1e-5)


def test_rotation_trick_value_and_gradient_equal_the_householder_matrix():
    g = torch.Generator().manual_seed(0)
    e = torch.randn(5, 4, generator=g, dtype=torch.float64, requires_grad=True)
    q = torch.randn(5, 4, generator=g, dtype=torch.float64)
    up = torch.randn(5, 4, generator=g, dtype=torch.float64)
    out = rotation_trick(e, q)
    torch.testing.assert_close(out, q)
    (out * up).sum().backward()
    for i in range(5):
        ei, qi = e[i].detach(), q[i]
        eh, qh = ei / ei.norm(), qi / qi.norm()
        r = (eh + qh) / (eh + qh).norm()
        rot = torch.eye(4, dtype=torch.float64) - 2 * torch.outer(r, r) + 2 * torch.outer(qh, eh)
        torch.testing.assert_close(rot @ eh, qh)  # a rotation taking e_hat to q_hat
        torch.testing.assert_close(rot.T @ rot, torch.eye(4, dtype=torch.float64))
        lam = qi.norm() / ei.norm()
        torch.testing.assert_close(e.grad[i], lam * rot.T @ up[i])


def test_quantizer_with_rotation_trick_returns_the_codes():
    q = ImprovedVectorQuantizer(16, 8, rotation_trick=True).train()
    q.embedding.weight.data.normal_()
    z = _z().requires_grad_(True)
    quant, _, info = q(z)
    codes = q.get_codebook_entry(info.indices.reshape(-1), shape=(2, 4, 5, 8))
    torch.testing.assert_close(quant, codes, rtol=1e-5, atol=1e-5)


# -- FSQ --------------------------------------------------------------------------------------


def _fsq_literal(z: np.ndarray, levels: list[int], paper_listing: bool) -> tuple[list, np.ndarray]:
    """Appendix A.1 of the FSQ paper, float64, one scalar at a time; mixed-radix ids.

    `paper_listing`: the printed listing, `(1 - eps)` and `tan`; else the corrected form
    (`(1 + eps)`, `atanh`) that vector-quantize-pytorch runs. Returns ids and the distance of
    each bounded value to the nearest rounding boundary (for near-tie bookkeeping).
    """
    eps = 1e-3
    ids, margins = [], []
    for vec in z:
        idx, basis, margin = 0, 1, np.inf
        for x, L in zip(vec, levels):
            half_l = (L - 1) * ((1 - eps) if paper_listing else (1 + eps)) / 2
            offset = 0.5 if L % 2 == 0 else 0.0
            shift = math.tan(offset / half_l) if paper_listing else math.atanh(offset / half_l)
            bounded = math.tanh(x + shift) * half_l - offset
            rounded = round(bounded)  # half to even, like jnp.round / torch.round
            margin = min(margin, abs(abs(bounded - math.floor(bounded)) - 0.5))
            idx += (rounded + L // 2) * basis
            basis *= L
        ids.append(idx)
        margins.append(margin)
    return ids, np.array(margins)


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 5, 5, 5, 5], [8, 6, 5], [3, 4]])
@pytest.mark.parametrize("paper_listing", [False, True])
def test_fsq_ids_equal_the_reference_formula_also_far_outside(levels, paper_listing):
    fsq = FSQ(levels).eval()
    z = _with_far_values(_z(3, len(levels), 6, 7, scale=2.5))
    _, _, info = fsq(z)
    ids, margins = _fsq_literal(_flat(z).double().numpy(), levels, paper_listing)
    ours = info.indices.reshape(-1).numpy()
    differ = ours != np.array(ids)
    # corrected form: only float32-vs-float64 rounding noise at a boundary may differ; the
    # printed listing's (1 - eps) moves the boundaries by up to (L - 1) * eps (and tan vs atanh
    # agree to third order), so values that close to a boundary may round the other way
    tie = 1e-2 if paper_listing else 1e-4
    assert not differ[margins > tie].any()
    assert differ.mean() < (0.05 if paper_listing else 0.01)


def test_fsq_codebook_size_and_every_id_is_a_fixed_point():
    fsq = FSQ([8, 5, 5, 5]).eval()
    assert fsq.vocab_size == 1000 and fsq.embed_dim == 4
    ids = torch.arange(1000)
    codes = fsq.get_codebook_entry(ids, shape=(1, 10, 100, 4))  # (1, 4, 10, 100)
    assert codes.min() >= -1 and codes.max() <= 1
    grid = {tuple(c) for c in _flat(codes).tolist()}
    assert len(grid) == 1000  # all codes distinct
    _, _, info = fsq(_preimage(fsq, codes))  # inputs that bound exactly onto the codes
    assert torch.equal(info.indices.reshape(-1), ids)


def _preimage(fsq: FSQ, codes: torch.Tensor) -> torch.Tensor:
    """Inputs that bound exactly onto the given codes (inverting tanh), (B, d, H, W)."""
    lv = torch.tensor(fsq.levels, dtype=torch.float64)[None, :, None, None]
    half_l = (lv - 1) * (1 + fsq.eps) / 2
    offset = torch.where(lv % 2 == 0, 0.5, 0.0)
    target = codes.double() * torch.floor(lv / 2)  # the rounded integers
    return (torch.atanh((target + offset) / half_l) - torch.atanh(offset / half_l)).float()


def test_fsq_gradient_is_straight_through_the_bound():
    fsq = FSQ([5, 8]).train()
    z = _z(1, 2, 3, 3).requires_grad_(True)
    quant, loss, _ = fsq(z)
    assert float(loss) == 0.0
    quant.sum().backward()
    zd = z.detach().double()
    lv = torch.tensor([5.0, 8.0], dtype=torch.float64)[None, :, None, None]
    half_l = (lv - 1) * 1.001 / 2
    shift = torch.atanh(torch.where(lv % 2 == 0, 0.5, 0.0) / half_l)
    expected = (1 - torch.tanh(zd + shift) ** 2) * half_l / torch.floor(lv / 2)
    torch.testing.assert_close(z.grad.double(), expected, rtol=1e-5, atol=1e-6)


def _literal_fsq_entropy(b: np.ndarray, levels, temperature, gamma, group) -> float:
    """MAGVIT-v2 Eq. 5 over the FSQ grid: q = softmax(-||b - c||^2 / T) over every grid point
    c (integer levels) of the bounded channels b, the batch term over groups of channels."""
    n, d = b.shape

    def soft(cols):
        grid = (
            np.array(
                np.meshgrid(*[np.arange(levels[i]) - levels[i] // 2 for i in cols], indexing="ij")
            )
            .reshape(len(cols), -1)
            .T
        )  # (K_g, g)
        lg = -((b[:, None, cols] - grid[None]) ** 2).sum(-1) / temperature
        lg -= lg.max(1, keepdims=True)
        p = np.exp(lg)
        return p / p.sum(1, keepdims=True)

    p = soft(list(range(d)))  # the full grid, not factorised
    per_sample = float(-(p * np.log(np.maximum(p, 1e-300))).sum(1).mean())
    batch = 0.0
    for s in range(0, d, group):
        avg = soft(list(range(s, min(s + group, d)))).mean(0)
        batch += float(-(avg * np.log(np.maximum(avg, 1e-300))).sum())
    return per_sample - gamma * batch


@pytest.mark.parametrize("group", [None, 1, 2])
def test_fsq_entropy_loss_equals_the_literal_formula(group):
    levels = [5, 3, 4]
    fsq = FSQ(levels, entropy_temperature=0.7, diversity_gamma=0.9, entropy_group_channels=group)
    z = _z(2, 3, 4, 4, seed=5)
    bounded = fsq.bound(_flat(z))
    ours = float(fsq.entropy_loss(bounded))
    expected = _literal_fsq_entropy(bounded.double().numpy(), levels, 0.7, 0.9, group or 3)
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_fsq_entropy_loss_in_training_only_and_off_by_default():
    z = _z(1, 4, 3, 3).requires_grad_(True)
    fsq = FSQ([8, 5, 5, 5], entropy_weight=0.3).train()
    _, loss, _ = fsq(z)
    torch.testing.assert_close(loss, 0.3 * fsq.entropy_loss(fsq.bound(_flat(z))))
    loss.backward()
    assert z.grad is not None and z.grad.abs().sum() > 0  # it reaches the encoder
    assert float(fsq.eval()(z).loss) == 0.0
    assert float(FSQ([8, 5, 5, 5]).train()(z).loss) == 0.0


def test_fsq_entropy_penalty_spreads_correlated_channels_over_the_grid():
    """Channels that are near-copies of one another use about the 5 codes of the diagonal of
    the 125; minimising the penalty over the inputs spreads them over the grid."""
    fsq = FSQ([5, 5, 5], entropy_weight=1.0).train()
    base = torch.randn(1, 1, 32, 32, generator=torch.Generator().manual_seed(0))
    z = (base.repeat(1, 3, 1, 1) + 0.01 * _z(1, 3, 32, 32, seed=1)).requires_grad_(True)
    assert len(fsq(z).info.indices.unique()) <= 25
    opt = torch.optim.Adam([z], lr=0.05)
    for _ in range(100):
        opt.zero_grad()
        fsq(z).loss.backward()
        opt.step()
    assert len(fsq.eval()(z).info.indices.unique()) >= 90


def test_fsq_rejects_two_levels():
    with pytest.raises(ValueError, match=">= 3"):
        FSQ([2, 5])


# -- LFQ / BSQ --------------------------------------------------------------------------------


def _lfq_literal_ids(z: np.ndarray) -> list[int]:
    """id = binary number of [z_i > 0], channel 0 the most significant bit."""
    return [int("".join("1" if v > 0 else "0" for v in vec), 2) for vec in z]


@pytest.mark.parametrize("cls", [LFQ, BSQ])
def test_lfq_ids_equal_the_sign_bits_also_far_outside(cls):
    q = cls(2**6).eval()
    z = _with_far_values(_z(2, 6, 5, 5))
    z[0, :, 0, 0] = 0.0  # an all-zero vector: every bit is 0 (code -1)
    quant, _, info = q(z)
    assert info.indices.reshape(-1).tolist() == _lfq_literal_ids(_flat(z).numpy())
    s = 1 / math.sqrt(6) if cls is BSQ else 1.0
    expected = torch.where(z > 0, s, -s)
    assert torch.equal(quant, expected)
    assert int(info.indices[0, 0, 0]) == 0


def test_lfq_codebook_size_and_round_trip_of_every_id():
    q = LFQ(2**10).eval()
    assert q.vocab_size == 1024 and q.embed_dim == 10
    codes = q.get_codebook_entry(torch.arange(1024), shape=(1, 32, 32, 10))
    _, _, info = q(codes)
    assert torch.equal(info.indices.reshape(-1), torch.arange(1024))
    with pytest.raises(ValueError, match="power of two"):
        LFQ(1000)


def _literal_lfq_entropy(z: np.ndarray, temperature: float, gamma: float, group: int) -> float:
    """MAGVIT-v2 Eq. 5 with q = softmax(-||z - c||^2 / T) over every code of each bit group."""
    n, d = z.shape
    per_sample, batch = 0.0, 0.0
    # per-sample entropy over the full codebook (it factorises, but computed here in full)
    codes = np.array(
        [[1.0 if (k >> (d - 1 - i)) & 1 else -1.0 for i in range(d)] for k in range(2**d)]
    )
    logits = -((z[:, None, :] - codes[None]) ** 2).sum(-1) / temperature
    logits -= logits.max(1, keepdims=True)
    p = np.exp(logits)
    p /= p.sum(1, keepdims=True)
    per_sample = float(-(p * np.log(np.maximum(p, 1e-300))).sum(1).mean())
    for s in range(0, d, group):
        g = min(group, d - s)
        sub = codes[: 2**g, d - g :]  # the 2^g codes of g bits, most significant first
        lg = -((z[:, None, s : s + g] - sub[None]) ** 2).sum(-1) / temperature
        lg -= lg.max(1, keepdims=True)
        pg = np.exp(lg)
        pg /= pg.sum(1, keepdims=True)
        avg = pg.mean(0)
        batch += float(-(avg * np.log(np.maximum(avg, 1e-300))).sum())
    return per_sample - gamma * batch


@pytest.mark.parametrize("group", [None, 2, 3])
def test_lfq_entropy_loss_equals_the_literal_formula(group):
    z = _z(2, 6, 4, 4, seed=4) * 0.05  # small inputs: soft assignments, not one-hot
    q = LFQ(2**6, entropy_temperature=0.1, diversity_gamma=0.8, entropy_group_bits=group)
    ours = float(q.entropy_loss(_flat(z)))
    expected = _literal_lfq_entropy(_flat(z).double().numpy(), 0.1, 0.8, group or 6)
    assert ours == pytest.approx(expected, rel=1e-4, abs=1e-5)


def test_lfq_loss_is_commitment_plus_entropy_in_training_only():
    z = _z(1, 4, 3, 3)
    q = LFQ(16, entropy_weight=0.2, commitment_weight=0.5).train()
    quant, loss, _ = q(z)
    commit = torch.mean((torch.where(z > 0, 1.0, -1.0) - z) ** 2)
    expected = 0.5 * commit + 0.2 * q.entropy_loss(_flat(z))
    torch.testing.assert_close(loss, expected)
    assert float(q.eval()(z).loss) == 0.0


# -- peer library -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def vqp():
    return pytest.importorskip("vector_quantize_pytorch")


@pytest.mark.parametrize("levels", [[8, 5, 5, 5], [7, 5, 5, 5, 5], [8, 8, 8, 6, 5], [3, 4, 6]])
def test_fsq_ids_and_codes_equal_vector_quantize_pytorch(vqp, levels):
    peer = vqp.FSQ(levels=levels)
    ours = FSQ(levels).eval()
    for seed, scale in ((0, 1.0), (1, 4.0), (2, 100.0)):
        z = _with_far_values(_z(2, len(levels), 9, 11, seed=seed, scale=scale))
        z[~torch.isfinite(z)] = 1e30  # the peer's tanh(inf) is fine too, keep it comparable
        quant, _, info = ours(z)
        peer_quant, peer_ids = peer(z)
        assert torch.equal(info.indices, peer_ids.long())
        assert torch.equal(quant, peer_quant)
        back = ours.get_codebook_entry(info.indices.reshape(-1), shape=(2, 9, 11, len(levels)))
        assert torch.equal(back, peer.indices_to_codes(peer_ids))


@pytest.mark.parametrize("spherical", [False, True])
def test_lfq_ids_codes_and_entropy_equal_vector_quantize_pytorch(vqp, spherical):
    d = 8
    peer = vqp.LFQ(
        codebook_size=2**d,
        dim=d,
        entropy_loss_weight=1.0,
        commitment_loss_weight=0.0,
        spherical=spherical,
    )
    ours = LFQ(2**d, entropy_weight=1.0, commitment_weight=0.0, spherical=spherical)
    z = _with_far_values(_z(2, d, 6, 6, seed=7))
    # the peer normalises before taking signs: keep ||z|| finite in float32 for it
    z[~torch.isfinite(z) | (z.abs() > 1e3)] = 1e3 if spherical else 1e30
    for mode in ("eval", "train"):
        getattr(peer, mode)()
        getattr(ours, mode)()
        quant, loss, info = ours(z)
        ret = peer(z)
        assert torch.equal(info.indices, ret.indices.long())
        # in training the peer returns z + (zhat - z).detach() even without autograd, which
        # cancels catastrophically for |z| ~ 1e30; compare the codes where it does not
        ok = z.abs() <= 1e3 if mode == "train" else torch.ones_like(z, dtype=torch.bool)
        torch.testing.assert_close(quant[ok], ret.quantized[ok], rtol=0, atol=1e-6)
    zs = _z(2, d, 6, 6, seed=8) * 0.05  # soft assignments: the entropies matter
    _, loss, _ = ours.train()(zs)
    ret = peer.train()(zs)
    # the peer clamps probabilities at 1e-5 inside its logs; ours is exact
    assert float(loss) == pytest.approx(float(ret.entropy_aux_loss), rel=2e-3, abs=2e-3)
