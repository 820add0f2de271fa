"""`taming.metrics.codebook` and `taming.metrics.image` against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from taming.metrics.codebook import CodebookCounter, codebook_stats, dead_codes, histogram
from taming.metrics.image import psnr, psnr_per_image


def test_usage_perplexity_dead_codes_on_constructed_indices():
    n = 8
    idx = torch.tensor([[0, 0, 1, 1], [2, 2, 3, 3]])  # 4 of 8 codes, uniformly
    counts = histogram(idx, n)
    assert counts.tolist() == [2, 2, 2, 2, 0, 0, 0, 0]
    usage, perplexity = codebook_stats(counts)
    assert float(usage) == 0.5
    assert float(perplexity) == pytest.approx(4.0)
    assert dead_codes(counts) == 4
    skewed = torch.tensor([3, 1, 0, 0])
    p = torch.tensor([0.75, 0.25], dtype=torch.float64)
    assert float(codebook_stats(skewed)[1]) == pytest.approx(math.exp(-(p * p.log()).sum()))


def test_counter_accumulates_over_batches():
    c = CodebookCounter(4)
    assert c.histogram().tolist() == [0, 0, 0, 0]
    c.update(torch.tensor([0, 1]))
    c.update(torch.tensor([[1, 3]]))
    assert c.histogram().tolist() == [1, 2, 0, 1]
    c.reset()
    assert float(codebook_stats(c.histogram())[0]) == 0.0


def test_psnr_closed_form():
    x = torch.zeros(2, 3, 4, 4)
    y = x.clone()
    y[0] += 0.2  # [0, 1] scale: error 0.1 everywhere -> mse 0.01 -> 20 dB
    y[1] -= 0.02  # error 0.01 -> 40 dB
    torch.testing.assert_close(psnr_per_image(y, x), torch.tensor([20.0, 40.0]).double())
    assert float(psnr(y, x)) == pytest.approx(30.0)
