"""The fused VQGAN generator step equals the original computation (taming.train.gan_step)."""

from __future__ import annotations

import pytest
import torch

from taming.autoencoder.vqmodel import VQModel
from taming.train import gan_step
from taming.train.gan_step import discriminator_step, generator_step

DDCONFIG = dict(
    double_z=False,
    z_channels=8,
    resolution=32,
    in_channels=3,
    out_ch=3,
    ch=32,
    ch_mult=[1, 2],
    num_res_blocks=1,
    attn_resolutions=[16],
    dropout=0.0,
)


def make_model(disc_start: int = 0, perceptual_weight: float = 1.0, dtype=torch.float32):
    torch.manual_seed(0)
    loss = dict(
        target="taming.losses.vqperceptual.VQLPIPSWithDiscriminator",
        params=dict(
            disc_start=disc_start,
            disc_weight=0.8,
            disc_num_layers=2,
            disc_ndf=16,
            perceptual_weight=perceptual_weight,
            lpips_pretrained=False,  # random VGG trunk: no weights file needed
        ),
    )
    model = VQModel(ddconfig=DDCONFIG, lossconfig=loss, n_embed=64, embed_dim=8)
    model.init_loss()
    if model.loss.perceptual_loss is not None:  # None when perceptual_weight == 0
        with torch.no_grad():  # a non-trivial LPIPS: random positive heads
            for lin in model.loss.perceptual_loss.lins:
                lin.model[-1].weight.uniform_(0.0, 1.0)
    return model.to(dtype).train()


def batch(dtype=torch.float32, b: int = 2) -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return (torch.rand(b, 3, 32, 32, generator=g) * 2 - 1).to(dtype)


def original_step(model: VQModel, x: torch.Tensor, step: int):
    """The original: one forward, d_weight by two autograd.grad calls, full backward."""
    xrec, qloss = model(x)
    total, log = model.loss.generator_loss(
        qloss, x, xrec, step, last_layer=model.get_last_layer(), split="train"
    )
    return log["train/d_weight"], total, log, xrec


@pytest.mark.parametrize("path", ["conv_weight_grad", "autograd_to_last_layer"])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_adaptive_weight_equals_original_formula(dtype, path, monkeypatch):
    if path == "autograd_to_last_layer":  # the route for a last layer that is not conv_out
        monkeypatch.setattr(gan_step, "last_conv", lambda model: None)
    model = make_model(dtype=dtype)
    x = batch(dtype)
    torch.manual_seed(5)  # same LPIPS dropout masks in both computations
    d_ref, total_ref, log_ref, _ = original_step(model, x, step=1)
    torch.manual_seed(5)
    out = generator_step(model, x, global_step=1)
    d_ours = out.log["train/d_weight"]
    assert d_ref.item() > 0 and torch.isfinite(d_ref)
    assert abs(d_ours.item() - d_ref.item()) <= 1e-6 * abs(d_ref.item()), (d_ours, d_ref)
    torch.testing.assert_close(out.loss, total_ref.detach(), rtol=1e-6, atol=1e-7)
    for key, value in log_ref.items():
        torch.testing.assert_close(out.log[key], value, rtol=1e-5, atol=1e-6, msg=key)


def test_fused_backward_gives_the_original_gradients():
    model = make_model(dtype=torch.float64)
    x = batch(torch.float64)
    ae = [(n, p) for n, p in model.named_parameters() if not n.startswith("loss.")]
    torch.manual_seed(5)
    _, total_ref, _, _ = original_step(model, x, step=1)
    total_ref.backward()
    ref = {n: p.grad.clone() for n, p in ae}
    model.zero_grad(set_to_none=True)
    torch.manual_seed(5)
    out = generator_step(model, x, global_step=1)
    out.surrogate.backward()
    for n, p in ae:
        assert p.grad is not None, n
        torch.testing.assert_close(p.grad, ref[n], rtol=1e-6, atol=1e-12, msg=n)
    # the generator step leaves the discriminator's gradients untouched
    assert all(p.grad is None for p in model.loss.discriminator.parameters())


def test_grad_scale_changes_nothing_in_fp32():
    model = make_model()
    x = batch()
    torch.manual_seed(5)
    plain = generator_step(model, x, global_step=1)
    torch.manual_seed(5)
    scaled = generator_step(model, x, global_step=1, grad_scale=2.0**16)
    for key, value in plain.log.items():
        torch.testing.assert_close(scaled.log[key], value, rtol=1e-6, atol=1e-7, msg=key)


def test_disc_start_gates_the_gan_term_but_d_weight_is_still_computed():
    model = make_model(disc_start=3, perceptual_weight=0.0)
    x = batch()
    before = generator_step(model, x, global_step=2)
    assert float(before.log["train/disc_factor"]) == 0.0
    assert float(before.log["train/d_weight"]) > 0  # logged before disc_start, like the original
    expected = before.log["train/nll_loss"] + before.log["train/quant_loss"]
    torch.testing.assert_close(before.loss, expected)
    after = generator_step(model, x, global_step=3)
    assert float(after.log["train/disc_factor"]) == 1.0
    d_loss, log = discriminator_step(model.loss, x, after.reconstructions, 2)
    assert float(d_loss.detach()) == 0.0 and "train/logits_real" in log
    d_loss, _ = discriminator_step(model.loss, x, after.reconstructions, 3)
    assert float(d_loss.detach()) > 0.0


def test_discriminator_step_uses_the_generator_reconstruction():
    model = make_model(perceptual_weight=0.0)
    x = batch()
    out = generator_step(model, x, global_step=0)
    assert not out.reconstructions.requires_grad
    model.loss.discriminator.eval()  # deterministic BatchNorm for the comparison
    d_loss, _ = discriminator_step(model.loss, x, out.reconstructions, 0)
    ref, _ = model.loss.discriminator_loss(x, out.reconstructions, 0)
    torch.testing.assert_close(d_loss, ref)
    d_loss.backward()
    assert all(p.grad is None for n, p in model.named_parameters() if n.startswith("encoder."))
    assert any(p.grad is not None for p in model.loss.discriminator.parameters())
