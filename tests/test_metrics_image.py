"""PSNR and SSIM of `taming.metrics.image` against torchmetrics (a peer implementation)."""

from __future__ import annotations

import pytest
import torch

from taming.metrics.image import psnr, psnr_per_image, ssim, ssim_per_image

tm_image = pytest.importorskip("torchmetrics.image")


def _pair(seed: int, shape=(3, 3, 40, 52)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(shape, generator=g, dtype=torch.float64) * 2 - 1
    y = (x + 0.3 * torch.randn(shape, generator=g, dtype=torch.float64)).clamp(-1, 1)
    return x, y


@pytest.mark.parametrize("seed", [0, 1])
def test_ssim_equals_torchmetrics(seed):
    x, y = _pair(seed)
    ref = tm_image.StructuralSimilarityIndexMeasure(data_range=1.0, reduction="none")
    expected = ref((y + 1) / 2, (x + 1) / 2)
    torch.testing.assert_close(ssim_per_image(y, x), expected.double(), rtol=1e-10, atol=1e-12)
    mean = tm_image.StructuralSimilarityIndexMeasure(data_range=1.0)((y + 1) / 2, (x + 1) / 2)
    assert float(ssim(y, x)) == pytest.approx(float(mean), rel=1e-6)  # float32 state


def test_ssim_of_identical_images_is_one_and_drops_with_noise():
    x, y = _pair(2)
    assert torch.allclose(ssim_per_image(x, x), torch.ones(3, dtype=torch.float64))
    assert float(ssim(x, y)) < 0.9


def test_psnr_equals_torchmetrics():
    x, y = _pair(3)
    ref = tm_image.PeakSignalNoiseRatio(data_range=1.0, reduction="none", dim=(1, 2, 3))
    expected = ref((y + 1) / 2, (x + 1) / 2)
    # torchmetrics accumulates the squared error in float32
    torch.testing.assert_close(psnr_per_image(y, x), expected.double(), rtol=1e-6, atol=0)
    mean = tm_image.PeakSignalNoiseRatio(data_range=1.0, dim=(1, 2, 3))((y + 1) / 2, (x + 1) / 2)
    assert float(psnr(y, x)) == pytest.approx(float(mean), rel=1e-6)  # float32 state
