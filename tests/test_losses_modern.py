"""LeCAM, the non-saturating generator loss and discriminator warm-up in the VQGAN loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from taming.losses import VQLPIPSWithDiscriminator
from taming.losses.lecam import LeCAM
from taming.losses.vqperceptual import hinge_d_loss
from taming.train.gan_step import discriminator_step, generator_step


def make_loss(**kwargs):
    torch.manual_seed(0)
    return VQLPIPSWithDiscriminator(
        disc_start=5,
        disc_num_layers=2,
        disc_ndf=8,
        lpips_pretrained=False,
        perceptual_weight=0.0,
        **kwargs,
    )


def test_lecam_equals_the_papers_formula_with_ema_anchors():
    reg = LeCAM(decay=0.9).train()
    g = torch.Generator().manual_seed(0)
    anchors = [0.0, 0.0]
    for _ in range(3):
        real, fake = torch.randn(4, 1, 5, 5, generator=g) + 1, torch.randn(4, 1, 5, 5, generator=g)
        value = reg(real, fake)
        anchors = [0.9 * a + 0.1 * float(t.mean()) for a, t in zip(anchors, (real, fake))]
        r = torch.mean((real.double() - anchors[1]) ** 2) + torch.mean(
            (fake.double() - anchors[0]) ** 2
        )
        assert float(value) == pytest.approx(float(r), rel=1e-5)
    before = (reg.ema_real.clone(), reg.ema_fake.clone())
    reg.eval()(real, fake)
    assert torch.equal(reg.ema_real, before[0]) and torch.equal(reg.ema_fake, before[1])


def test_lecam_enters_the_discriminator_loss_and_only_then_the_state_dict():
    plain = make_loss()
    assert not any("lecam" in k for k in plain.state_dict())
    loss = make_loss(lecam_weight=0.3, lecam_decay=0.5).train()
    x, xr = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    d_loss, log = loss.discriminator_loss(x, xr, global_step=5)
    with torch.no_grad():
        real, fake = loss.discriminator(x), loss.discriminator(xr)
    # anchors after one update from 0 with decay 0.5
    ar, af = 0.5 * real.mean(), 0.5 * fake.mean()
    lecam = torch.mean((real - af) ** 2) + torch.mean((fake - ar) ** 2)
    torch.testing.assert_close(log["train/lecam_loss"], lecam, rtol=1e-4, atol=1e-6)
    torch.testing.assert_close(d_loss, hinge_d_loss(real, fake) + 0.3 * lecam, rtol=1e-4, atol=1e-6)
    assert {"lecam.ema_real", "lecam.ema_fake"} <= set(loss.state_dict())


def test_non_saturating_generator_loss():
    loss = make_loss(gen_loss="non_saturating")
    xr = torch.rand(2, 3, 32, 32, requires_grad=True)
    g = loss.adversarial_loss(xr)
    with torch.no_grad():
        logits = loss.discriminator(xr).double()
    expected = -torch.log(torch.sigmoid(logits)).mean()
    assert float(g.detach()) == pytest.approx(float(expected), rel=1e-5)
    g.backward()
    assert xr.grad.abs().sum() > 0
    assert float(make_loss().adversarial_loss(xr.detach()).detach()) == pytest.approx(
        -float(logits.mean()), rel=1e-5
    )
    with pytest.raises(ValueError, match="gen_loss"):
        make_loss(gen_loss="wasserstein")


class _TinyAE(nn.Module):
    """Stands in for a VQModel in `generator_step`: encode/decode/get_last_layer/loss."""

    def __init__(self, loss: nn.Module) -> None:
        super().__init__()
        self.enc = nn.Conv2d(3, 4, 3, padding=1)
        self.decoder = nn.Module()
        self.decoder.conv_out = nn.Conv2d(4, 3, 3, padding=1)
        self.loss = loss

    def encode(self, x):
        return self.enc(x), torch.zeros(()), (None, None, torch.zeros(1, dtype=torch.long))

    def decode(self, h):
        return self.decoder.conv_out(h)

    def get_last_layer(self):
        return self.decoder.conv_out.weight


def test_discriminator_warm_up_trains_d_before_the_generator_sees_it():
    warmup = 3
    model = _TinyAE(make_loss(disc_warmup_steps=warmup)).train()
    x = torch.rand(1, 3, 32, 32) * 2 - 1
    for step in (4, 5, 7, 8):
        out = generator_step(model, x, step)
        d_loss, _ = discriminator_step(model.loss, x, out.reconstructions, step)
        assert (float(d_loss.detach()) != 0.0) == (step >= 5), step  # D trains from disc_start
        g_on = step >= 5 + warmup  # the generator sees the GAN term only after the warm-up
        assert float(out.log["train/disc_factor"]) == (1.0 if g_on else 0.0), step
    assert model.loss.disc_train_start == 5 and model.loss.discriminator_iter_start == 5 + warmup
    with pytest.raises(ValueError, match="disc_warmup_steps"):
        make_loss(disc_warmup_steps=-1)


def test_defaults_keep_the_original_loss():
    loss = make_loss()
    assert loss.gen_loss_name == "original" and loss.lecam_weight == 0.0
    assert loss.discriminator_iter_start == loss.disc_train_start == 5
    assert math.isclose(loss.disc_factor, 1.0)
