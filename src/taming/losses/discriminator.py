"""PatchGAN discriminator and ActNorm.

PatchGAN from "Image-to-Image Translation with Conditional Adversarial Networks" (pix2pix,
Isola et al., 2017), as used for the VQGAN adversarial loss ("Taming Transformers", Esser et al.,
2021). ActNorm from "Glow" (Kingma & Dhariwal, 2018): a per-channel affine layer initialised
from the first training batch.

Parameter names follow the original checkpoints: `main.{idx}` with the indices of the original
`nn.Sequential` (convs, norms and LeakyReLUs each take an index), e.g. for `n_layers=3`
`main.0` conv (bias), `main.2` conv, `main.3` norm, `main.5`, `main.6`, `main.8`, `main.9`,
`main.11` conv (bias). With BatchNorm the inner convs have no bias; with ActNorm they have one.
"""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["ActNorm", "NLayerDiscriminator", "weights_init"]


def weights_init(m: nn.Module) -> None:
    """DCGAN-style init, applied with `module.apply(weights_init)`.

    Conv weights ~ N(0, 0.02) (biases keep PyTorch's default init); BatchNorm weights
    ~ N(1, 0.02), biases 0. Other modules (ActNorm included) are left alone. Matching is by
    class name, as in the original.
    """
    classname = type(m).__name__
    if "Conv" in classname:
        nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif "BatchNorm" in classname:
        nn.init.normal_(m.weight.data, 1.0, 0.02)
        nn.init.constant_(m.bias.data, 0.0)


class ActNorm(nn.Module):
    """Per-channel affine normalisation `scale * (x + loc)` with data-dependent init.

    On the first forward in training mode (while the `initialized` buffer is 0), `loc` is set to
    minus the per-channel mean and `scale` to 1 / (per-channel std + 1e-6) of that batch
    (unbiased std over N*H*W), so the output starts with zero mean and unit variance.

    Args:
        num_features: channels C.
        logdet: also return the log-determinant `H * W * sum(log|scale|)` per sample.
        affine: must be True (kept for signature compatibility).
        allow_reverse_init: allow the data-dependent init from the reverse direction.
    """

    def __init__(
        self,
        num_features: int,
        logdet: bool = False,
        affine: bool = True,
        allow_reverse_init: bool = False,
    ) -> None:
        if not affine:
            raise ValueError("ActNorm only supports affine=True")
        super().__init__()
        self.logdet = logdet
        self.loc = nn.Parameter(torch.zeros(1, num_features, 1, 1))
        self.scale = nn.Parameter(torch.ones(1, num_features, 1, 1))
        self.allow_reverse_init = allow_reverse_init
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    @torch.no_grad()
    def initialize(self, x: torch.Tensor) -> None:
        """Set `loc`/`scale` from the statistics of x (B, C, H, W)."""
        flat = x.transpose(0, 1).reshape(x.shape[1], -1)  # (C, B*H*W)
        mean = flat.mean(dim=1)
        std = flat.std(dim=1)
        self.loc.copy_(-mean[None, :, None, None])
        self.scale.copy_((1.0 / (std + 1e-6))[None, :, None, None])

    def _needs_init(self) -> bool:
        return self.training and int(self.initialized.item()) == 0

    def forward(
        self, x: torch.Tensor, reverse: bool = False
    ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        """Normalise x (B, C, H, W) or (B, C); `reverse=True` applies the inverse."""
        if reverse:
            return self.reverse(x)
        squeeze = x.dim() == 2
        if squeeze:
            x = x[:, :, None, None]
        _, _, height, width = x.shape
        if self._needs_init():
            self.initialize(x)
            self.initialized.fill_(1)
        h = self.scale * (x + self.loc)
        if squeeze:
            h = h.squeeze(-1).squeeze(-1)
        if self.logdet:
            logdet = height * width * torch.sum(torch.log(torch.abs(self.scale)))
            return h, logdet * torch.ones(x.shape[0]).to(x)
        return h

    def reverse(self, y: torch.Tensor) -> torch.Tensor:
        """Inverse map `y / scale - loc`."""
        if self._needs_init():
            if not self.allow_reverse_init:
                raise RuntimeError(
                    "Initializing ActNorm in reverse direction is disabled by default. "
                    "Use allow_reverse_init=True to enable."
                )
            self.initialize(y)
            self.initialized.fill_(1)
        squeeze = y.dim() == 2
        if squeeze:
            y = y[:, :, None, None]
        h = y / self.scale - self.loc
        if squeeze:
            h = h.squeeze(-1).squeeze(-1)
        return h


class NLayerDiscriminator(nn.Module):
    """PatchGAN: a conv net whose output is a map of real/fake logits, one per patch.

    Args:
        input_nc: input channels.
        ndf: channels of the first conv.
        n_layers: number of stride-2 convs after the first (channel multiplier min(2^n, 8)).
        use_actnorm: ActNorm instead of BatchNorm (inner convs then get a bias).

    Shapes: (B, input_nc, H, W) -> (B, 1, H', W'); 256x256 -> 30x30 for n_layers=3,
    62x62 for n_layers=2 (70x70 receptive field for n_layers=3).
    """

    def __init__(
        self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, use_actnorm: bool = False
    ) -> None:
        super().__init__()
        norm_layer = ActNorm if use_actnorm else nn.BatchNorm2d
        use_bias = use_actnorm  # BatchNorm has its own affine shift
        kw, padw = 4, 1
        seq: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=kw, stride=2, padding=padw),
            nn.LeakyReLU(0.2, True),
        ]
        mult = 1
        for n in range(1, n_layers):
            mult_prev, mult = mult, min(2**n, 8)
            seq += [
                nn.Conv2d(ndf * mult_prev, ndf * mult, kw, stride=2, padding=padw, bias=use_bias),
                norm_layer(ndf * mult),
                nn.LeakyReLU(0.2, True),
            ]
        mult_prev, mult = mult, min(2**n_layers, 8)
        seq += [
            nn.Conv2d(ndf * mult_prev, ndf * mult, kw, stride=1, padding=padw, bias=use_bias),
            norm_layer(ndf * mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * mult, 1, kernel_size=kw, stride=1, padding=padw),  # logit map
        ]
        self.main = nn.Sequential(*seq)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.main(x)
