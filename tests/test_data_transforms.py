"""Resize/crop semantics: albumentations 0.4.3 (closed forms), OpenCV (peer library, when
installed) and torchvision's antialiased tensor resize (PIL as the peer)."""

from __future__ import annotations

import random

import numpy as np
import pytest
import torch
from PIL import Image

from taming.data import albu, cvresize
from taming.data.transforms import scene_crop, tv_resize


def test_random_crop_uses_albumentations_random_draws():
    img = np.arange(30 * 50 * 3, dtype=np.uint8).reshape(30, 50, 3)
    random.seed(7)
    draws = [random.random() for _ in range(4)]  # Compose, RandomCrop p, h_start, w_start
    random.seed(7)
    out = albu.Compose([albu.RandomCrop(20, 20)])(image=img)["image"]
    top, left = int((30 - 20) * draws[2]), int((50 - 20) * draws[3])
    np.testing.assert_array_equal(out, img[top : top + 20, left : left + 20])
    assert random.random() not in draws  # exactly 4 draws were consumed


def test_center_crop_and_smallest_max_size_rounding():
    img = np.zeros((25, 10), np.uint8)
    out = albu.SmallestMaxSize(5)(image=img)["image"]
    assert out.shape == (12, 5)  # 12.5 rounds half to even, as py3round
    crop = albu.CenterCrop(4, 4)(image=np.arange(63).reshape(7, 9))["image"]
    np.testing.assert_array_equal(crop, np.arange(63).reshape(7, 9)[1:5, 2:6])
    with pytest.raises(ValueError, match="larger than the image"):
        albu.CenterCrop(8, 8)(image=np.zeros((7, 9)))
    # targets of other sizes get their own offsets (as albumentations)
    out = albu.CenterCrop(2, 2)(image=np.zeros((4, 4)), mask=np.arange(36).reshape(6, 6))
    np.testing.assert_array_equal(out["mask"], [[14, 15], [20, 21]])


def test_masks_resize_with_nearest():
    mask = np.array([[0, 1], [2, 3]], np.uint8).repeat(3, 0).repeat(3, 1)  # (6, 6)
    out = albu.SmallestMaxSize(4, "bicubic")(image=np.zeros((6, 6, 3), np.uint8), mask=mask)
    assert set(np.unique(out["mask"])) == {0, 1, 2, 3}
    np.testing.assert_array_equal(
        out["mask"],
        mask[np.floor(np.arange(4) * 1.5).astype(int)][:, np.floor(np.arange(4) * 1.5).astype(int)],
    )


@pytest.fixture()
def cv2():
    return pytest.importorskip("cv2", reason="OpenCV (the data extra) is the peer library here")


@pytest.mark.parametrize("seed", range(4))
def test_fallbacks_against_opencv(seed: int, cv2):
    rng = np.random.default_rng(seed)
    h, w = rng.integers(5, 90, 2)
    nh, nw = rng.integers(3, 130, 2)
    img = rng.integers(0, 256, (h, w, 3)).astype(np.uint8)
    ref = cv2.resize(img, (int(nw), int(nh)), interpolation=cv2.INTER_NEAREST)
    np.testing.assert_array_equal(cvresize._nearest(img, nw, nh), ref)  # exact
    for name, flag in (("bilinear", 1), ("bicubic", 2), ("area", 3)):
        ref = cv2.resize(img, (int(nw), int(nh)), interpolation=flag)
        monkey = cvresize.opencv
        try:
            cvresize.opencv = lambda: None  # the numpy fallback
            out = cvresize.resize(img, int(nw), int(nh), name)
        finally:
            cvresize.opencv = monkey
        assert np.abs(out.astype(int) - ref).max() <= 1, name  # fixed-point rounding: 1 level
    half = img[: h // 2 * 2, : w // 2 * 2]
    ref = cv2.resize(half, (w // 2, h // 2), interpolation=cv2.INTER_LINEAR)
    np.testing.assert_array_equal(cvresize._bilinear(half, w // 2, h // 2), ref)


def test_opencv_backend_is_cv2_resize(cv2):
    if cvresize.backend() != "opencv":
        pytest.skip("TAMING_NO_OPENCV set")
    img = np.random.default_rng(0).integers(0, 256, (40, 30, 3)).astype(np.uint8)
    for name, flag in (("bicubic", cv2.INTER_CUBIC), ("area", cv2.INTER_AREA)):
        ref = cv2.resize(img, (17, 23), interpolation=flag)
        np.testing.assert_array_equal(cvresize.resize(img, 17, 23, name), ref)
    many = np.random.default_rng(1).random((20, 20, 9)).astype(np.float32)  # > 4 channels
    out = cvresize.resize(many, 10, 10, "bilinear")
    ref = np.dstack([cv2.resize(many[:, :, i], (10, 10)) for i in range(9)])
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_tv_resize_matches_pil_antialiased_bilinear():
    img = np.random.default_rng(0).integers(0, 256, (120, 90, 3)).astype(np.uint8)
    x = torch.from_numpy(img).permute(2, 0, 1)
    out = tv_resize(x, 40).permute(1, 2, 0).numpy()
    assert out.shape == (53, 40, 3)  # shortest side 40, other side truncated: int(40*120/90)
    ref = np.asarray(Image.fromarray(img).resize((40, 53), Image.Resampling.BILINEAR))
    assert np.abs(out.astype(int) - ref).max() <= 1


def test_scene_center_crop_box_uses_the_resized_size():
    x = torch.zeros(3, 480, 640, dtype=torch.uint8)
    bbox, out = scene_crop(x, 256, "center")
    assert out.shape == (3, 256, 256)
    w = 256 / 341  # Resize(256) gives 341 x 256
    assert bbox == pytest.approx((0.5 - w / 2, 0.0, w, 1.0))
    assert scene_crop(x, 64, "none")[0] is None
    torch.manual_seed(0)
    i, j = torch.randint(0, 256 - 256 + 1, (1,)).item(), torch.randint(0, 341 - 256 + 1, (1,))
    torch.manual_seed(0)
    bbox, _ = scene_crop(x, 256, "random-1d")
    assert bbox == pytest.approx((j.item() / 341, i / 256, 256 / 341, 1.0))
