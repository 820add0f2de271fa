"""One VQGAN training iteration with a single backward pass per network.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021),
Eq. 7: the generator minimises `L_rec + L_codebook + lambda * L_GAN` with the adaptive weight

    lambda = ||grad_w L_rec|| / (||grad_w L_GAN|| + 1e-4),    w = decoder.conv_out.weight.

The original computed `lambda` with two `autograd.grad(..., last_layer)` calls from the two
losses and then ran a full backward of the total loss: LPIPS (VGG16) and the discriminator
were each backpropagated twice. Here the autoencoder output `x_hat` is cut from the graph
(`r = x_hat.detach().requires_grad_()`):

1. `g_nll = dL_rec/dr` (one backward through L1 + LPIPS) and `g_adv = dL_GAN/dr` (one backward
   through the discriminator, input gradients only);
2. both are mapped to the last layer's weight by the chain rule, `dL/dw = (dx_hat/dw)^T
   dL/dx_hat`: for `x_hat = conv_out(h)` that is the convolution's weight-gradient kernel
   applied to `h` (recorded by a forward hook) and `g` (`torch.nn.grad.conv2d_weight`, the
   kernel autograd itself runs), giving exactly the two gradients the original formula takes
   norms of; it needs no graph to the parameter, so it works under DDP and FSDP wrappers;
3. `d_weight` is computed from their norms exactly as `calculate_adaptive_weight` does;
4. one backward from `x_hat` with the gradient `g_nll + d_weight * disc_factor * g_adv` (plus
   the codebook loss) reaches every autoencoder parameter with the gradient of the original
   total loss.

The discriminator step reuses the generator step's reconstruction (detached). It is the
reconstruction from *before* the generator's optimizer step; the original re-ran the
autoencoder after that update (PL 1.0 called `training_step` once per optimizer), which costs a
whole extra forward pass for a one-step-old fake.

Everything here is plain PyTorch, so benchmarks and tests use the same code as the trainer.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import torch
from torch import nn

from taming.losses.vqperceptual import adopt_weight, generator_log

__all__ = [
    "ADAM_BETAS",
    "GeneratorStep",
    "adaptive_weight_from_output_grads",
    "autoencode",
    "conv_weight_grad",
    "discriminator_step",
    "generator_step",
    "last_conv",
    "make_adam",
]

ADAM_BETAS = (0.5, 0.9)


def make_adam(params: Any, lr: float) -> torch.optim.Adam:
    """`Adam(lr, betas=(0.5, 0.9))`, the original's optimizer for both networks.

    Uses PyTorch's fused Adam kernel where the parameters' device has one (the same update
    in one kernel instead of a loop over tensors; equal up to float rounding), else the
    default implementation.
    """
    params = list(params)
    try:
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS, fused=True)
    except (RuntimeError, TypeError, ValueError):
        return torch.optim.Adam(params, lr=lr, betas=ADAM_BETAS)


class GeneratorStep(NamedTuple):
    """Result of `generator_step`.

    Attributes:
        loss: the total generator loss (detached), the original's `aeloss`.
        surrogate: scalar to backpropagate; its gradient w.r.t. every autoencoder parameter
            equals the gradient of the original total loss.
        reconstructions: x_hat (B, C, H, W), detached; reused by the discriminator step.
        indices: codebook indices of this batch (any shape), detached.
        log: detached `{split}/total_loss, quant_loss, nll_loss, rec_loss, p_loss, d_weight,
            disc_factor, g_loss`, as `VQLPIPSWithDiscriminator.generator_loss` logs them.
    """

    loss: torch.Tensor
    surrogate: torch.Tensor
    reconstructions: torch.Tensor
    indices: torch.Tensor
    log: dict[str, torch.Tensor]


def autoencode(model: nn.Module, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Any]:
    """x (B, C, H, W) -> `(x_hat (B, C, H, W), codebook loss, indices)` in one forward pass."""
    quant, qloss, info = model.encode(x)
    indices = info[2] if isinstance(info, tuple) else info
    return model.decode(quant), qloss, indices


def last_conv(model: nn.Module) -> nn.Conv2d | None:
    """`decoder.conv_out` if it is the layer whose weight `get_last_layer()` returns."""
    conv = getattr(getattr(model, "decoder", None), "conv_out", None)
    if (
        isinstance(conv, nn.Conv2d)
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and model.get_last_layer() is conv.weight
    ):
        return conv
    return None


class _InputOf:
    """Context manager recording the input of a module's last call (a forward hook)."""

    def __init__(self, module: nn.Module | None) -> None:
        self.module = module
        self.input: torch.Tensor | None = None

    def __enter__(self) -> _InputOf:
        if self.module is not None:
            self.handle = self.module.register_forward_hook(self._hook)
        return self

    def _hook(self, module: nn.Module, args: tuple, output: torch.Tensor) -> None:
        self.input = args[0]

    def __exit__(self, *exc: Any) -> None:
        if self.module is not None:
            self.handle.remove()


def conv_weight_grad(conv: nn.Conv2d, conv_input: torch.Tensor, grad_output: torch.Tensor):
    """dL/dW of `conv` given its input (B, C_in, H, W) and dL/d(output) (B, C_out, H', W').

    The weight-gradient kernel that autograd runs for the conv, without the graph, so it works
    whatever wraps the parameters (DDP, FSDP).
    """
    shape = (conv.out_channels, conv.in_channels // conv.groups, *conv.kernel_size)
    return torch.nn.grad.conv2d_weight(
        conv_input.detach(),
        shape,
        grad_output.to(conv_input.dtype),
        stride=conv.stride,
        padding=conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
    )


def _ratio(nll_w: torch.Tensor, adv_w: torch.Tensor, disc_weight: float) -> torch.Tensor:
    # exactly VQLPIPSWithDiscriminator.calculate_adaptive_weight, from the two gradients
    d_weight = torch.norm(nll_w) / (torch.norm(adv_w) + 1e-4)
    d_weight = torch.clamp(d_weight, 0.0, 1e4).detach()
    return d_weight * disc_weight


def adaptive_weight_from_output_grads(
    output: torch.Tensor,
    last_layer: torch.Tensor,
    nll_grad: torch.Tensor,
    adv_grad: torch.Tensor,
    disc_weight: float = 1.0,
) -> torch.Tensor:
    """The original adaptive weight from the two losses' gradients w.r.t. the decoder output.

    For a last layer other than a plain `conv_out` (see `conv_weight_grad` for that case):
    `autograd.grad(output, last_layer, grad_outputs=g)` runs only the nodes between the output
    and the layer.

    Args:
        output: x_hat (B, C, H, W), still attached to the graph that contains `last_layer`.
        last_layer: the weight the norms are taken on.
        nll_grad: dL_rec/dx_hat (B, C, H, W).
        adv_grad: dL_GAN/dx_hat (B, C, H, W).
        disc_weight: the loss's `discriminator_weight` multiplier.

    Returns:
        `disc_weight * clamp(||dL_rec/dw|| / (||dL_GAN/dw|| + 1e-4), 0, 1e4)`, detached, equal
        to `VQLPIPSWithDiscriminator.calculate_adaptive_weight(L_rec, L_GAN, w)`.
    """
    (nll_w,) = torch.autograd.grad(output, last_layer, grad_outputs=nll_grad, retain_graph=True)
    (adv_w,) = torch.autograd.grad(output, last_layer, grad_outputs=adv_grad, retain_graph=True)
    return _ratio(nll_w, adv_w, disc_weight)


def generator_step(
    model: nn.Module,
    x: torch.Tensor,
    global_step: int,
    split: str = "train",
    grad_scale: float = 1.0,
) -> GeneratorStep:
    """Forward pass, losses and adaptive weight of the VQGAN generator (autoencoder) update.

    Args:
        model: a `VQModel`-like module with `encode`, `decode`, `get_last_layer` and a built
            `loss` (`VQLPIPSWithDiscriminator`).
        x: input images (B, C, H, W) in [-1, 1].
        global_step: generator steps so far; the GAN term is on from `disc_start`.
        split: prefix of the log keys.
        grad_scale: the losses are multiplied by this before their gradients w.r.t. x_hat are
            taken, which are then divided by it (fp16 mixed precision: pass the GradScaler's
            scale so small gradients do not underflow; a power of two changes nothing else).

    Returns:
        A `GeneratorStep`; backpropagate `surrogate` (scaled as needed), then step.
    """
    loss_fn = model.loss
    if getattr(loss_fn, "disc_conditional", False):
        raise ValueError("generator_step does not support a conditional discriminator")
    conv = last_conv(model)
    with _InputOf(conv) as conv_in:
        xrec, qloss, indices = autoencode(model, x)  # (B, C, H, W), graph to the AE params
    r = xrec.detach().requires_grad_(True)  # LPIPS and D see a leaf: no second backward
    nll_loss, rec_loss, p_loss = loss_fn.reconstruction_loss(x, r)
    g_loss = loss_fn.adversarial_loss(r)
    (nll_grad,) = torch.autograd.grad(nll_loss * grad_scale, r)  # through L1 + LPIPS, once
    (adv_grad,) = torch.autograd.grad(g_loss * grad_scale, r)  # through D (input grads), once
    if grad_scale != 1.0:
        nll_grad, adv_grad = nll_grad.float() / grad_scale, adv_grad.float() / grad_scale
    if conv is not None and conv_in.input is not None:  # dW = conv weight-gradient(h, g)
        d_weight = _ratio(
            conv_weight_grad(conv, conv_in.input, nll_grad),
            conv_weight_grad(conv, conv_in.input, adv_grad),
            loss_fn.discriminator_weight,
        )
    else:
        d_weight = adaptive_weight_from_output_grads(
            xrec, model.get_last_layer(), nll_grad, adv_grad, loss_fn.discriminator_weight
        )
    disc_factor = adopt_weight(
        loss_fn.disc_factor, global_step, threshold=loss_fn.discriminator_iter_start
    )
    q_loss = qloss.mean()
    gan_scale = d_weight * disc_factor
    grad_rec = nll_grad + gan_scale * adv_grad  # d(total)/d(x_hat), (B, C, H, W)
    surrogate = (xrec * grad_rec).sum() + loss_fn.codebook_weight * q_loss
    with torch.no_grad():
        total = nll_loss + gan_scale * g_loss + loss_fn.codebook_weight * q_loss
    log = generator_log(
        split, total, qloss, nll_loss, rec_loss, p_loss, d_weight, disc_factor, g_loss
    )
    return GeneratorStep(total.detach(), surrogate, xrec.detach(), indices.detach(), log)


def discriminator_step(
    loss_fn: nn.Module,
    x: torch.Tensor,
    reconstructions: torch.Tensor,
    global_step: int,
    split: str = "train",
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Discriminator loss on real `x` and the (detached) generator-step reconstructions."""
    return loss_fn.discriminator_loss(x, reconstructions.detach(), global_step, split=split)
