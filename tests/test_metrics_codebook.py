"""`taming.metrics.codebook` and `taming.metrics.image` against closed forms."""

from __future__ import annotations

import math

import pytest
import torch

from taming.metrics.codebook import (
    CodebookCounter,
    codebook_stats,
    collapse_warning,
    dead_codes,
    histogram,
)
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


def test_collapse_warning_counts_the_codes_that_could_be_used():
    assert collapse_warning(torch.tensor([5, 0, 0, 0])) is None  # 1 of min(4, 5) = 25%
    many = torch.zeros(100, dtype=torch.long)
    many[:4] = 50  # 4 of 100 codes over 200 tokens: 4%
    msg = collapse_warning(many, where="val")
    assert msg.startswith("val: codebook collapse: 4 of 100 codes") and "96 dead codes" in msg
    assert collapse_warning(many, threshold=0.04) is None
    few = torch.zeros(1000, dtype=torch.long)
    few[:3] = 1  # 3 tokens, 3 codes: a tiny set, not a collapse
    assert collapse_warning(few) is None
    assert collapse_warning(torch.zeros(8, dtype=torch.long)) is None


def test_training_logs_dead_codes_and_warns_on_collapse(tmp_path, caplog, monkeypatch):
    """A codebook whose codes but one lie far away: validation uses one code of 64."""
    import logging

    import taming
    from test_train_module import metrics, random_data, train, values, vq_model, write_config

    monkeypatch.setenv("TAMING_TRUSTED_TARGETS", "test_train_module.")  # its dataset class
    cfg_model = vq_model(n_embed=64)
    model = taming.instantiate_from_config(
        {**cfg_model, "params": {**cfg_model["params"], "lossconfig": None}}
    )
    with torch.no_grad():
        model.quantize.embedding.weight.fill_(1e4)
        model.quantize.embedding.weight[0] = 0
    torch.save(model.state_dict(), tmp_path / "init.pt")
    cfg_model["params"]["ckpt_path"] = str(tmp_path / "init.pt")
    data = random_data(batch_size=2, n=8)
    data["params"]["validation"] = data["params"]["train"]
    cfg = write_config(tmp_path / "c.yaml", cfg_model, data)
    with caplog.at_level(logging.WARNING, logger="taming.train.vqgan_module"):
        res = train(tmp_path, cfg, 4)
    rows = metrics(res.logdir)
    assert values(rows, "val/dead_codes")[-1] == 63
    assert values(rows, "train/dead_codes")[-1] == 63
    assert res.module.codebook["val"] == {"usage": 1 / 64, "perplexity": 1.0, "dead_codes": 63}
    assert "epoch 0 val: codebook collapse: 1 of 64 codes used" in caplog.text
