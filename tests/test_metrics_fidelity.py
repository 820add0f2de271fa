"""FID, KID, IS against closed forms and literal formulas; the FID Inception and its inputs.

The network runs with random weights in the real file layout (`tests/inception_testing.py`),
mostly at a 75-pixel internal size (the real 299 costs ~0.2 s per image on 2 cores).
Parity with torch-fidelity itself is `benchmarks/fidelity_parity.py` (needs torchvision).
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest
import torch

from inception_testing import PT_FILE, TF_FILE, write_images, write_weights
from taming.metrics.extractor import Features, InceptionExtractor
from taming.metrics.fid import (
    frechet_distance,
    frechet_distance_features,
    load_statistics,
    save_statistics,
    statistics,
)
from taming.metrics.fidelity import calculate_metrics
from taming.metrics.inception import (
    FIDInceptionV3,
    InceptionWeightsError,
    load_inception,
    tf1_bilinear_resize,
)
from taming.metrics.inception_fast import FastInceptionV3
from taming.metrics.inception_weights import (
    InceptionWeightsNotFoundError,
    resolve_inception_weights,
)
from taming.metrics.isc import inception_score
from taming.metrics.kid import kid
from taming.metrics.sources import DatasetSource, FolderSource, list_images, read_image_uint8

# -- FID ---------------------------------------------------------------------------------------


def _spd(rng, d, eig):
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    return q, q @ np.diag(eig) @ q.T


def test_fid_gaussian_closed_form_commuting():
    rng = np.random.default_rng(0)
    d = 6
    e1, e2 = rng.uniform(0.2, 3, d), rng.uniform(0.2, 3, d)
    q, s1 = _spd(rng, d, e1)
    s2 = q @ np.diag(e2) @ q.T  # same eigenbasis: tr sqrt(s1 s2) = sum sqrt(e1 e2)
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    expected = ((mu1 - mu2) ** 2).sum() + (e1 + e2 - 2 * np.sqrt(e1 * e2)).sum()
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(expected, rel=1e-10)


def _sqrtm_psd(a):
    w, v = np.linalg.eigh(a)
    return v @ np.diag(np.sqrt(np.clip(w, 0, None))) @ v.T


def test_fid_general_case_equals_symmetric_sqrtm_formula_and_is_symmetric():
    rng = np.random.default_rng(1)
    d = 8
    _, s1 = _spd(rng, d, rng.uniform(0.1, 2, d))
    _, s2 = _spd(rng, d, rng.uniform(0.1, 2, d))
    mu1, mu2 = rng.standard_normal(d), rng.standard_normal(d)
    r1 = _sqrtm_psd(s1)
    tr = np.trace(_sqrtm_psd(r1 @ s2 @ r1))  # tr (s1^1/2 s2 s1^1/2)^1/2, an independent form
    expected = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr
    fid = frechet_distance(mu1, s1, mu2, s2)
    assert fid == pytest.approx(expected, rel=1e-9)
    assert frechet_distance(mu2, s2, mu1, s1) == pytest.approx(fid, rel=1e-9)


def test_fid_of_a_set_with_itself_is_zero_and_of_samples_near_the_closed_form():
    rng = np.random.default_rng(2)
    f = rng.standard_normal((500, 16)) * 2 + 1
    mu, sigma = statistics(f)
    assert abs(frechet_distance(mu, sigma, mu, sigma)) < 1e-8 * np.trace(sigma)
    # N(0, I) vs N(m, 4 I) in 4 dims: |m|^2 + 4 (1 + 4 - 2 * 2) = |m|^2 + 4
    a = rng.standard_normal((200_000, 4))
    b = rng.standard_normal((200_000, 4)) * 2 + np.array([1.0, 0, 0, 2])
    fid = frechet_distance(*statistics(a), *statistics(b))
    assert fid == pytest.approx(5.0 + 4.0, rel=0.01)


@pytest.mark.parametrize("n1,n2", [(7, 11), (90, 120)])
def test_fid_from_features_equals_the_statistics_formula(n1, n2):
    """The nuclear-norm form (n < D) against the eigenvalue form, also for n > D."""
    rng = np.random.default_rng(8)
    a = rng.standard_normal((n1, 64)) * rng.uniform(0.5, 2, 64)
    b = rng.standard_normal((n2, 64)) @ rng.standard_normal((64, 64)) * 0.3 + 0.2
    (mu1, s1), (mu2, s2) = statistics(a), statistics(b)
    if n1 < 64:  # sigma1 has rank n1 - 1: restrict s1^1/2 s2 s1^1/2 to its range, exactly
        _, sv, vt = np.linalg.svd(a - mu1, full_matrices=False)
        v, sv = vt[: n1 - 1].T, sv[: n1 - 1]
        m = sv[:, None] * (v.T @ s2 @ v) * sv[None, :] / (n1 - 1)
        tr = np.sqrt(np.clip(np.linalg.eigvalsh(m), 0, None)).sum()
    else:
        r1 = _sqrtm_psd(s1)
        tr = np.trace(_sqrtm_psd(r1 @ s2 @ r1))
    exact = ((mu1 - mu2) ** 2).sum() + np.trace(s1) + np.trace(s2) - 2 * tr
    assert frechet_distance_features(a, b) == pytest.approx(exact, rel=1e-10)
    # the eigenvalue form adds square roots of rounding noise when sigma is rank-deficient
    expected = frechet_distance(mu1, s1, mu2, s2)
    assert frechet_distance_features(a, b) == pytest.approx(expected, rel=1e-9 if n1 > 64 else 1e-7)
    assert abs(frechet_distance_features(a, a)) < 1e-10 * np.trace(statistics(a)[1])


def test_statistics_npz_as_a_reference(tmp_path):
    rng = np.random.default_rng(9)
    a, b = rng.standard_normal((30, 16)), rng.standard_normal((40, 16)) + 0.3
    save_statistics(tmp_path / "b.npz", *statistics(b))
    fa = Features(a.astype(np.float32), np.zeros((30, 4), np.float32))
    fb = Features(b.astype(np.float32), np.zeros((40, 4), np.float32))
    via_npz = calculate_metrics(fa, tmp_path / "b.npz")["fid"]
    assert via_npz == pytest.approx(calculate_metrics(fa, fb)["fid"], rel=1e-6)
    with pytest.raises(ValueError, match="KID needs images or features; b.npz"):
        calculate_metrics(fa, tmp_path / "b.npz", kid=True)


def test_statistics_npz_round_trip(tmp_path):
    rng = np.random.default_rng(3)
    mu, sigma = statistics(rng.standard_normal((20, 5)))
    path = save_statistics(tmp_path / "s.npz", mu, sigma)
    mu2, sigma2 = load_statistics(path)
    np.testing.assert_array_equal(mu, mu2)
    np.testing.assert_array_equal(sigma, sigma2)
    np.savez(tmp_path / "bad.npz", m=mu)
    with pytest.raises(ValueError, match="bad.npz: no 'mu'"):
        load_statistics(tmp_path / "bad.npz")


# -- KID ---------------------------------------------------------------------------------------


def _mmd2_loops(x, y):
    """Unbiased polynomial-kernel MMD^2, written out term by term."""
    d = x.shape[1]

    def k(a, b):
        return (a @ b / d + 1) ** 3

    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j)
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j)
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m))
    return (xx + yy) / (m * (m - 1)) - 2 * xy / (m * m)


def test_kid_equals_the_literal_estimator_on_whole_sets():
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((12, 5)), rng.standard_normal((12, 5)) + 0.5
    # subsets of all 12 are permutations: the estimator is permutation-invariant
    mean, std = kid(x, y, subsets=3, subset_size=12)
    assert mean == pytest.approx(_mmd2_loops(x, y), rel=1e-10)
    assert std == pytest.approx(0.0, abs=1e-12)


def test_kid_is_unbiased_on_a_toy_case():
    rng = np.random.default_rng(5)
    biased, unbiased = [], []
    for _ in range(40):  # two samples of one distribution: E[MMD^2_u] = 0, the biased one > 0
        x, y = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
        unbiased.append(kid(x, y, subsets=1, subset_size=30)[0])
        kxx, kyy, kxy = ((a @ b.T / 4 + 1) ** 3 for a, b in ((x, x), (y, y), (x, y)))
        biased.append(kxx.mean() + kyy.mean() - 2 * kxy.mean())
    u, se = np.mean(unbiased), np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(u) < 3 * se
    assert np.mean(biased) > 10 * se
    different = kid(rng.standard_normal((30, 4)), rng.standard_normal((30, 4)) + 1, 5, 30)[0]
    assert different > 10 * se


def test_kid_draws_follow_the_seed_and_need_enough_images():
    rng = np.random.default_rng(6)
    x, y = rng.standard_normal((40, 3)), rng.standard_normal((50, 3))
    assert kid(x, y, 5, 20, seed=1) == kid(x, y, 5, 20, seed=1)
    assert kid(x, y, 5, 20, seed=1) != kid(x, y, 5, 20, seed=2)
    with pytest.raises(ValueError, match="subset size 41"):
        kid(x, y, 5, 41)


# -- IS ----------------------------------------------------------------------------------------


def test_inception_score_closed_forms():
    assert inception_score(np.zeros((20, 7)), splits=2)[0] == pytest.approx(1.0)
    # confident and balanced over 4 classes in every split: IS = 4 exactly
    logits = np.full((40, 10), -50.0)
    logits[np.arange(40), np.arange(40) % 4] = 50.0
    mean, std = inception_score(logits, splits=10, shuffle=False)
    assert mean == pytest.approx(4.0, rel=1e-9) and std == pytest.approx(0.0, abs=1e-9)
    # with the shuffle, split i holds the permuted rows: IS_i = exp(H(class frequencies))
    perm = np.random.RandomState(2020).permutation(40)
    cls = (np.arange(40) % 4)[perm]
    expected = []
    for i in range(10):
        f = np.bincount(cls[i * 4 : (i + 1) * 4], minlength=4) / 4
        expected.append(np.exp(-(f[f > 0] * np.log(f[f > 0])).sum()))
    mean, std = inception_score(logits, splits=10)
    assert mean == pytest.approx(np.mean(expected), rel=1e-9)
    assert std == pytest.approx(np.std(expected), rel=1e-6)


# -- the network -------------------------------------------------------------------------------


def _tf1_resize_loops(img, oh, ow):
    """TF 1.x resize_bilinear (align_corners=False), pixel by pixel, float64."""
    c, h, w = img.shape
    out = np.zeros((c, oh, ow))
    for i in range(oh):
        sy = np.float32(i) * np.float32(h / oh)
        y0 = int(np.floor(sy))
        y1, dy = min(y0 + 1, h - 1), float(sy) - y0
        for j in range(ow):
            sx = np.float32(j) * np.float32(w / ow)
            x0 = int(np.floor(sx))
            x1, dx = min(x0 + 1, w - 1), float(sx) - x0
            top = img[:, y0, x0] + (img[:, y0, x1] - img[:, y0, x0]) * dx
            bot = img[:, y1, x0] + (img[:, y1, x1] - img[:, y1, x0]) * dx
            out[:, i, j] = top + (bot - top) * dy
    return out


@pytest.mark.parametrize("hw,out", [((7, 5), (11, 13)), ((20, 9), (6, 4))])
def test_tf1_resize_equals_the_per_pixel_definition(hw, out):
    img = np.random.default_rng(7).uniform(0, 255, (2, *hw))
    ours = tf1_bilinear_resize(torch.from_numpy(img)[None], out)[0].numpy()
    np.testing.assert_allclose(ours, _tf1_resize_loops(img, *out), rtol=1e-10, atol=1e-9)


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    return write_weights(tmp_path_factory.mktemp("inception") / TF_FILE)


@pytest.fixture(scope="module")
def ref75(weights):
    return load_inception(weights, input_size=75)


def test_fast_form_equals_reference_form(ref75, weights):
    fast = FastInceptionV3(ref75)
    x = torch.randint(0, 256, (3, 3, 60, 90), dtype=torch.uint8)
    with torch.no_grad():
        (p_ref, l_ref), (p_fast, l_fast) = ref75(x), fast(x)
    assert p_ref.shape == (3, 2048) and l_ref.shape == (3, 1008)
    assert float(p_ref.std()) > 0.1  # non-degenerate features
    for a, b in ((p_fast, p_ref), (l_fast, l_ref)):
        assert float((a - b).abs().max() / b.abs().max()) < 1e-5


@pytest.mark.parametrize(
    "size", [139, pytest.param(299, marks=pytest.mark.slow)]
)  # 139: 3x3 maps in the last blocks (padding and pooling at borders), 299: the real one
def test_fast_form_at_larger_sizes(weights, size):
    ref = load_inception(weights, input_size=size)
    x = torch.randint(0, 256, (2, 3, 64, 64), dtype=torch.uint8)
    with torch.no_grad():
        a, b = FastInceptionV3(ref)(x)[0], ref(x)[0]
    assert float((a - b).abs().max() / b.abs().max()) < 1e-5


def test_reference_form_matches_a_literal_first_layer(ref75):
    """The stem: TF1 resize, (x - 128) / 128, conv, BatchNorm (eps 1e-3), ReLU."""
    x = torch.randint(0, 256, (1, 3, 40, 40), dtype=torch.uint8)
    z = tf1_bilinear_resize(x.double(), (75, 75)) / 128 - 1
    layer = ref75.Conv2d_1a_3x3
    y = torch.nn.functional.conv2d(z, layer.conv.weight.double(), stride=2)
    bn = layer.bn
    y = (y - bn.running_mean.double()[:, None, None]) / torch.sqrt(
        bn.running_var.double()[:, None, None] + 1e-3
    ) * bn.weight.double()[:, None, None] + bn.bias.double()[:, None, None]
    with torch.no_grad():
        ours = layer(ref75.preprocess(x))
    torch.testing.assert_close(ours.double(), y.clamp_min(0), rtol=1e-4, atol=1e-4)


def test_both_weight_file_names_and_wrong_files(tmp_path, weights, monkeypatch):
    home, hub = tmp_path / "home", tmp_path / "torch"
    monkeypatch.setenv("TAMING_HOME", str(home))
    monkeypatch.setenv("TORCH_HOME", str(hub))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)  # torch.hub.get_dir() follows TORCH_HOME
    with pytest.raises(InceptionWeightsNotFoundError, match=TF_FILE):
        resolve_inception_weights()
    pt = hub / "hub" / "checkpoints" / PT_FILE  # pytorch-fid's name, in the hub cache
    pt.parent.mkdir(parents=True)
    os.link(weights, pt)
    assert resolve_inception_weights() == pt
    tf = home / TF_FILE  # torch-fidelity's name in $TAMING_HOME comes first
    home.mkdir()
    os.link(weights, tf)
    assert resolve_inception_weights() == tf
    a = load_inception(pt, input_size=75).state_dict()
    b = load_inception(tf, input_size=75).state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    sd = torch.load(weights, weights_only=True)
    sd["extra.weight"] = torch.zeros(1)
    torch.save(sd, tmp_path / "bad.pth")
    with pytest.raises(InceptionWeightsError, match="bad.pth.*unexpected key 'extra.weight'"):
        load_inception(tmp_path / "bad.pth")
    (tmp_path / "html.pth").write_text("<html>not found</html>")
    with pytest.raises(InceptionWeightsError, match="html.pth: cannot read"):
        load_inception(tmp_path / "html.pth")


def test_missing_weights_fail_fast_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TAMING_HOME", str(tmp_path / "empty"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch"))
    monkeypatch.setattr(torch.hub, "_hub_dir", None)
    t0 = time.perf_counter()
    with pytest.raises(InceptionWeightsNotFoundError) as e:
        InceptionExtractor()
    assert time.perf_counter() - t0 < 1.0
    msg = str(e.value)
    assert TF_FILE in msg and "https://github.com/toshas/torch-fidelity" in msg
    assert str(tmp_path / "empty") in msg and "\n" not in msg
    with pytest.raises(InceptionWeightsNotFoundError, match="nope.pth"):
        resolve_inception_weights(tmp_path / "nope.pth")


# -- image sets --------------------------------------------------------------------------------


def test_folder_listing_is_torch_fidelitys(tmp_path):
    write_images(tmp_path, 3, prefix="b")
    write_images(tmp_path, 1, prefix="a")
    (tmp_path / "c.JPG").write_bytes((tmp_path / "a000.png").read_bytes())
    (tmp_path / "d.bmp").write_bytes(b"x")  # not one of png, jpg, jpeg
    write_images(tmp_path / "sub", 1, prefix="z")
    names = [os.path.basename(p) for p in list_images(tmp_path)]
    assert names == ["a000.png", "b000.png", "b001.png", "b002.png", "c.JPG"]
    assert len(list_images(tmp_path, recursive=True)) == 6
    assert all(os.path.isabs(p) for p in list_images(tmp_path))


@pytest.fixture(scope="module")
def extractor(ref75):
    return InceptionExtractor.from_reference(ref75, digest="test", device="cpu", batch_size=4)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    root = tmp_path_factory.mktemp("sets")
    return write_images(root / "a", 12, seed=1), write_images(root / "b", 10, seed=2)


def test_calculate_metrics_between_folders(folders, extractor, tmp_path):
    a, b = folders
    m = calculate_metrics(
        a, b, kid=True, isc=True, extractor=extractor, kid_subset_size=8, isc_splits=3,
        cache_dir=tmp_path, progress=False,
    )  # fmt: skip
    fa = extractor.extract(FolderSource(a), progress=False)
    fb = extractor.extract(FolderSource(b), progress=False)
    assert m["n1"] == 12 and m["n2"] == 10
    assert m["fid"] == pytest.approx(frechet_distance_features(fa.pool3, fb.pool3), rel=1e-12)
    assert m["kid_mean"] == pytest.approx(kid(fa.pool3, fb.pool3, 100, 8)[0], rel=1e-12)
    assert m["isc_mean"] == pytest.approx(inception_score(fa.logits, 3)[0], rel=1e-12)
    same = calculate_metrics(a, a, extractor=extractor, cache_dir=tmp_path, progress=False)
    assert abs(same["fid"]) < 1e-9 * np.trace(fa.statistics()[1])
    back = calculate_metrics(b, a, extractor=extractor, cache_dir=tmp_path, progress=False)
    assert back["fid"] == pytest.approx(m["fid"], rel=1e-9)


def test_mixed_sizes_are_batched_by_size_in_order(tmp_path, extractor):
    write_images(tmp_path, 3, size=(40, 40), prefix="a")
    write_images(tmp_path, 2, size=(64, 48), prefix="b")
    src = FolderSource(tmp_path)
    shapes = [tuple(b.shape) for b in src.batches(2)]
    assert shapes == [(2, 3, 40, 40), (1, 3, 40, 40), (2, 3, 48, 64)]
    feats = extractor.extract(src, progress=False).pool3
    one = read_image_uint8(src.files[3])[None]  # the first 64x48 image on its own
    alone = extractor(one)[0][0].numpy()  # batch-size dependent kernels: ~1e-6 relative
    np.testing.assert_allclose(feats[3], alone, rtol=0, atol=1e-5 * np.abs(alone).max())
    assert not np.allclose(feats[2], alone, rtol=0, atol=1e-2 * np.abs(alone).max())


def test_feature_cache_is_keyed_by_content_and_weights(folders, extractor, tmp_path):
    a, _ = folders
    src = FolderSource(a)
    first = extractor.features(src, cache_dir=tmp_path, progress=False)
    path = extractor.cache_path(src, tmp_path)
    assert path.is_file()

    def boom(*args, **kwargs):
        raise AssertionError("should have been read from the cache")

    orig = extractor.extract
    extractor.extract = boom
    try:
        again = extractor.features(FolderSource(a), cache_dir=tmp_path, progress=False)
    finally:
        extractor.extract = orig
    np.testing.assert_array_equal(first.pool3, again.pool3)
    other = InceptionExtractor.from_reference(FIDInceptionV3(input_size=75), digest="other")
    assert other.cache_path(src, tmp_path) != path
    os.utime(src.files[0], ns=(1, 1))  # a changed file: another key
    assert extractor.cache_path(FolderSource(a), tmp_path) != path


def test_dataset_config_source_gives_the_files_pixels(tmp_path):
    folder = write_images(tmp_path / "imgs", 3, size=(32, 32))
    cfg = tmp_path / "data.yaml"
    cfg.write_text(
        "data:\n  target: taming.train.datamodule.DataModuleFromConfig\n  params:\n"
        "    batch_size: 2\n    validation:\n      target: taming.data.folder.ImageFolderDataset\n"
        f"      params:\n        root_or_list: {folder}\n        size: 32\n"
    )
    src = DatasetSource(cfg)
    ours = torch.stack(list(src))
    files = torch.stack(list(FolderSource(folder)))
    assert torch.equal(ours, files)
    assert src.fingerprint() is not None
