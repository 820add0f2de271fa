"""VQGAN first-stage models: `VQModel`, `GumbelVQ`, `EMAVQ` (plain `nn.Module`s).

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021).
An image is encoded to a grid of codebook indices and decoded back:

    x (B, C, H, W) -> encoder -> quant_conv -> quantize -> (quant (B, D, h, w), loss, info)
    quant -> post_quant_conv -> decoder -> x_rec (B, out_ch, H, W)

The constructors take the original `params` (`ddconfig`, `lossconfig`, `n_embed`,
`embed_dim`, `ckpt_path`, `ignore_keys`, `image_key`, `colorize_nlabels`, `monitor`, `remap`,
`sane_index_shape`). Module names are the original's, so original checkpoints load strictly.

The loss (`lossconfig`) is built only when asked for, by `init_loss()` (the trainer does this),
so inference needs no LPIPS/VGG weights. Once built it is the submodule `loss`, which keeps the
original key layout (`loss.perceptual_loss.*`, `loss.discriminator.*`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn

from taming.autoencoder.encoder_decoder import Decoder, Encoder
from taming.compat.checkpoint import (
    filter_state_dict,
    load_state_dict_strict,
    read_state_dict,
    strip_trainer_prefix,
)
from taming.compat.pretrained import PretrainedMixin
from taming.config import ConfigError, instantiate_from_config, to_container, validate_kwargs
from taming.quantize.base import QuantizeOutput
from taming.quantize.ema import EMAVectorQuantizer
from taming.quantize.gumbel import GumbelQuantize
from taming.quantize.vq import VectorQuantizer

logger = logging.getLogger(__name__)

__all__ = ["EMAVQ", "GumbelVQ", "VQModel", "get_input"]

# Keys a checkpoint may lack: the frozen VGG16 trunk of LPIPS is restored from its weights file
# (see taming.losses.weights); `colorize` is a random display projection that cond-stage
# checkpoints do not carry (the original registers it after loading them).
_MAY_BE_MISSING = ("loss.perceptual_loss.net.", "colorize")


def _inference_layout(x: torch.Tensor) -> torch.Tensor:
    """Channels-last activations when no gradients are tracked (inference).

    oneDNN/cuDNN then run the convolutions without layout reorders (about 1.1-1.25x faster
    here). With autograd the original NCHW layout, and so its exact arithmetic, is kept:
    training reproduces the original's losses bit for bit, inference agrees to ~1e-6.
    """
    if torch.is_grad_enabled() or x.ndim != 4:
        return x
    return x.contiguous(memory_format=torch.channels_last)


def get_input(batch: Mapping[str, Any], key: str) -> torch.Tensor:
    """Take `batch[key]`, channels-last (B, H, W[, C]) as the datasets deliver it -> (B, C, H, W).

    A missing channel axis is added; the result is contiguous float32.
    """
    if key not in batch:
        raise KeyError(f"batch has no key '{key}' (keys: {', '.join(map(str, batch))})")
    x = batch[key]
    if not isinstance(x, torch.Tensor):
        x = torch.as_tensor(x)
    if x.ndim == 3:
        x = x[..., None]  # (B, H, W) -> (B, H, W, 1)
    x = x.permute(0, 3, 1, 2)  # (B, H, W, C) -> (B, C, H, W)
    return x.to(memory_format=torch.contiguous_format, dtype=torch.float32)


def _configured_quantizer(
    config: dict, n_embed: int | None, embed_dim: int | None, remap: str | None
) -> nn.Module:
    """The quantizer of `quantizer_config`; `n_embed`/`embed_dim`, if given, must agree."""
    quantizer = instantiate_from_config(config, where="quantizer_config")
    if remap is not None:
        raise ConfigError("remap: not supported with quantizer_config")
    for key, given, actual in (
        ("n_embed", n_embed, quantizer.vocab_size),
        ("embed_dim", embed_dim, quantizer.embed_dim),
    ):
        if given is not None and given != actual:
            raise ConfigError(f"{key}: {given} disagrees with quantizer_config ({actual})")
    return quantizer


class VQModel(PretrainedMixin, nn.Module):
    """Vector-quantised autoencoder (the VQGAN generator).

    Args:
        ddconfig: Encoder/Decoder keyword arguments (see `taming.autoencoder.encoder_decoder`).
        lossconfig: `{target, params}` of the training loss; built by `init_loss()` only.
        n_embed: codebook size K (with `quantizer_config`: taken from the quantizer).
        embed_dim: code dimension D (with `quantizer_config`: taken from the quantizer).
        ckpt_path: checkpoint to load at construction (original semantics).
        ignore_keys: key prefixes to drop from `ckpt_path`.
        image_key: batch key of the input images.
        colorize_nlabels: if set, a random (3, n, 1, 1) projection buffer `colorize` for
            visualising n-channel inputs.
        monitor: metric name for checkpoint selection (used by the trainer).
        remap: `.npy` of used code ids (see `VectorQuantizer`).
        sane_index_shape: quantizer returns (B, h, w) indices instead of flat ones.
        beta: commitment/codebook weighting of the quantizer (original: 0.25, not settable).
        legacy: original beta placement (default; see `taming.quantize.vq`).
        quantizer_config: optional `{target, params}` of the quantizer (e.g.
            `taming.quantize.FSQ`); absent: the original `VectorQuantizer` from `n_embed`,
            `embed_dim`, `beta`, `remap`, `sane_index_shape`, `legacy`.
    """

    def __init__(
        self,
        ddconfig: dict,
        lossconfig: dict | None,
        n_embed: int | None = None,
        embed_dim: int | None = None,
        ckpt_path: str | None = None,
        ignore_keys: Sequence[str] = (),
        image_key: str = "image",
        colorize_nlabels: int | None = None,
        monitor: str | None = None,
        remap: str | None = None,
        sane_index_shape: bool = False,
        beta: float = 0.25,
        legacy: bool = True,
        quantizer_config: dict | None = None,
    ) -> None:
        super().__init__()
        ddconfig = dict(to_container(ddconfig))
        validate_kwargs(Encoder, ddconfig, "ddconfig", name="Encoder/Decoder")
        validate_kwargs(Decoder, ddconfig, "ddconfig", name="Encoder/Decoder")
        self.ddconfig = ddconfig
        self.lossconfig = to_container(lossconfig)
        self.image_key = image_key
        self.encoder = Encoder(**ddconfig)
        self.decoder = Decoder(**ddconfig)
        self.loss: nn.Module | None = None
        if quantizer_config is not None:
            self.quantize = _configured_quantizer(quantizer_config, n_embed, embed_dim, remap)
            n_embed, embed_dim = self.quantize.vocab_size, self.quantize.embed_dim
        else:
            if n_embed is None or embed_dim is None:
                missing = "n_embed" if n_embed is None else "embed_dim"
                raise ConfigError(f"{missing}: required key missing (no quantizer_config)")
            self.quantize = self._build_quantizer(
                n_embed=n_embed,
                embed_dim=embed_dim,
                beta=beta,
                remap=remap,
                sane_index_shape=sane_index_shape,
                legacy=legacy,
            )
        self.n_embed = n_embed
        self.embed_dim = embed_dim
        z_channels = ddconfig["z_channels"]
        self.quant_conv = nn.Conv2d(z_channels, embed_dim, 1)
        self.post_quant_conv = nn.Conv2d(embed_dim, z_channels, 1)
        if ckpt_path is not None:
            self.init_from_ckpt(ckpt_path, ignore_keys=ignore_keys)
        if colorize_nlabels is not None:
            if not isinstance(colorize_nlabels, int):
                raise ConfigError(f"colorize_nlabels: expected int, got {colorize_nlabels!r}")
            self.register_buffer("colorize", torch.randn(3, colorize_nlabels, 1, 1))
        if monitor is not None:
            self.monitor = monitor

    # -- construction helpers ----------------------------------------------------------------

    def _build_quantizer(self, **kw: Any) -> nn.Module:
        return VectorQuantizer(
            kw["n_embed"],
            kw["embed_dim"],
            beta=kw["beta"],
            remap=kw["remap"],
            sane_index_shape=kw["sane_index_shape"],
            legacy=kw["legacy"],
        )

    def init_loss(self) -> nn.Module:
        """Build the training loss from `lossconfig` (once) and register it as `loss`."""
        if self.loss is None:
            if not self.lossconfig:
                raise ConfigError("lossconfig: no loss configured for this model")
            self.loss = instantiate_from_config(self.lossconfig, where="lossconfig")
        return self.loss

    def checkpoint_key_rule(self, key: str) -> bool:
        """True for checkpoint keys this model drops by rule instead of loading.

        `loss.*` when no loss is built (inference), the keys the loss drops by its own rule
        (LPIPS when `perceptual_weight == 0`), `colorize` when the model has no such buffer
        (a visualisation projection).
        """
        if key.startswith("loss."):
            if self.loss is None:
                return True
            rule = getattr(self.loss, "checkpoint_key_rule", None)  # e.g. LPIPS not built
            if rule is not None and rule(key[len("loss.") :]):
                return True
        return key == "colorize" and not hasattr(self, "colorize")

    def load_checkpoint_state(
        self,
        state_dict: Mapping[str, torch.Tensor],
        ignore_keys: Sequence[str] = (),
        source: str = "checkpoint",
    ) -> None:
        """Filter an original-layout state dict by rule and load it strictly."""
        sd = filter_state_dict(state_dict, drop=ignore_keys, drop_rule=self.checkpoint_key_rule)
        load_state_dict_strict(
            self, sd, allow_missing=lambda k: k.startswith(_MAY_BE_MISSING), source=source
        )

    def init_from_ckpt(
        self, path: str, ignore_keys: Sequence[str] = (), unsafe: bool = False
    ) -> None:
        """Load an original-layout checkpoint (Lightning `.ckpt`, state dict or safetensors),
        or the `last.ckpt` of a `taming train` run."""
        sd = strip_trainer_prefix(read_state_dict(path, unsafe=unsafe))
        self.load_checkpoint_state(sd, ignore_keys=ignore_keys, source=str(path))
        logger.info("restored %s from %s", type(self).__name__, path)

    # -- the autoencoder ---------------------------------------------------------------------

    def encode_to_prequant(self, x: torch.Tensor) -> torch.Tensor:
        """Continuous latents before quantisation, (B, D, h, w)."""
        return self.quant_conv(self.encoder(_inference_layout(x)))

    def encode(self, x: torch.Tensor) -> QuantizeOutput:
        """x (B, C, H, W) -> `(quant (B, D, h, w), emb_loss, info)`; codes in `info.indices`.

        Under autocast (`--precision bf16-mixed`) the quantizer runs in float32: with bf16
        distances 8% of a demo batch's codes differed from the float64 choice, in float32 0.6%
        (tests/test_precision_bf16_mixed.py).
        """
        h = self.encode_to_prequant(x)
        if torch.is_autocast_enabled(h.device.type):
            with torch.autocast(h.device.type, enabled=False):
                return self.quantize(h.float())
        return self.quantize(h)

    def decode(self, quant: torch.Tensor) -> torch.Tensor:
        """quant (B, D, h, w) -> reconstruction (B, out_ch, h*f, w*f)."""
        return self.decoder(self.post_quant_conv(_inference_layout(quant)))

    def decode_code(self, code_b: torch.Tensor) -> torch.Tensor:
        """Decode codebook indices shaped (B, h, w) to images.

        (The original's `decode_code` calls a method that does not exist.)
        """
        if code_b.ndim != 3:
            raise ValueError(
                f"decode_code expects indices of shape (B, h, w), got {tuple(code_b.shape)}"
            )
        b, h, w = code_b.shape
        quant = self.quantize.get_codebook_entry(
            code_b.reshape(-1), shape=(b, h, w, self.embed_dim)
        )
        return self.decode(quant)

    @property
    def factor(self) -> int:
        """Spatial downsampling factor `f = 2 ** (len(ch_mult) - 1)`: an `H x W` image has an
        `H/f x W/f` code grid."""
        return 2 ** (len(self.ddconfig["ch_mult"]) - 1)

    @property
    def resolution(self) -> int:
        """The image size the model was configured (trained) for (`ddconfig.resolution`)."""
        return int(self.ddconfig.get("resolution", 0))

    @property
    def in_channels(self) -> int:
        """Channels of the images it encodes (3 for RGB, 1 for depth, `n_labels` one-hot)."""
        return int(self.ddconfig.get("in_channels", 3))

    def decode_memory_bytes(self, h: int, w: int, batch: int = 1) -> int:
        """A rough float32 activation peak of decoding `batch` code grids of `h x w`: three
        feature maps of the first level's width at full resolution (input, output, skip)."""
        f = self.factor
        width = int(self.ddconfig["ch"]) * int(self.ddconfig["ch_mult"][0])
        return 4 * batch * 3 * width * (h * f) * (w * f)

    def forward(self, input: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Reconstruct: returns `(dec, emb_loss)`."""
        quant, diff, _ = self.encode(input)
        return self.decode(quant), diff

    def get_input(self, batch: Mapping[str, Any], k: str | None = None) -> torch.Tensor:
        """Batch entry `k` (default `image_key`) as (B, C, H, W) float32."""
        return get_input(batch, self.image_key if k is None else k)

    def get_last_layer(self) -> torch.Tensor:
        """The weight the adaptive GAN weight is computed on (`decoder.conv_out.weight`)."""
        return self.decoder.conv_out.weight

    def to_rgb(self, x: torch.Tensor) -> torch.Tensor:
        """Project an n-channel map (e.g. one-hot segmentation) to RGB in [-1, 1] for display."""
        if not hasattr(self, "colorize"):
            self.register_buffer("colorize", torch.randn(3, x.shape[1], 1, 1).to(x))
        x = nn.functional.conv2d(x, weight=self.colorize)
        return 2.0 * (x - x.min()) / (x.max() - x.min()) - 1.0

    @torch.no_grad()
    def log_images(self, batch: Mapping[str, Any], **kwargs: Any) -> dict[str, torch.Tensor]:
        """`inputs` and `reconstructions` for image grids (RGB-projected if > 3 channels)."""
        x = self.get_input(batch).to(self.get_last_layer().device)
        xrec, _ = self(x)
        if x.shape[1] > 3:
            x, xrec = self.to_rgb(x), self.to_rgb(xrec)
        return {"inputs": x, "reconstructions": xrec}


class GumbelVQ(VQModel):
    """VQGAN with a Gumbel-softmax quantizer (the released "f8, 8192, Gumbel" model).

    Extra args:
        temperature_scheduler_config: `{target, params}` of the temperature schedule
            (e.g. `taming.lr_scheduler.LambdaWarmUpCosineScheduler`), a callable of the step.
        kl_weight: weight of the KL-to-uniform term.
        stochastic_eval: sample Gumbel noise in eval mode (the original's behaviour).

    The quantizer's `proj` takes `embed_dim` channels (what `quant_conv` produces); the original
    used `z_channels`, which only works when the two are equal, as in the released model.
    """

    def __init__(
        self,
        ddconfig: dict,
        lossconfig: dict | None,
        n_embed: int,
        embed_dim: int,
        temperature_scheduler_config: dict | None = None,
        ckpt_path: str | None = None,
        ignore_keys: Sequence[str] = (),
        image_key: str = "image",
        colorize_nlabels: int | None = None,
        monitor: str | None = None,
        kl_weight: float = 1e-8,
        remap: str | None = None,
        stochastic_eval: bool = False,
    ) -> None:
        self._kl_weight = kl_weight
        self._stochastic_eval = stochastic_eval
        super().__init__(
            ddconfig=ddconfig,
            n_embed=n_embed,
            embed_dim=embed_dim,
            lossconfig=lossconfig,
            ckpt_path=None,
            image_key=image_key,
            colorize_nlabels=colorize_nlabels,
            monitor=monitor,
            remap=remap,
        )
        self.vocab_size = n_embed
        self.temperature_scheduler = (
            instantiate_from_config(
                temperature_scheduler_config, where="temperature_scheduler_config"
            )
            if temperature_scheduler_config is not None
            else None
        )
        if ckpt_path is not None:
            self.init_from_ckpt(ckpt_path, ignore_keys=ignore_keys)

    def _build_quantizer(self, **kw: Any) -> nn.Module:
        return GumbelQuantize(
            kw["embed_dim"],
            kw["embed_dim"],
            n_embed=kw["n_embed"],
            kl_weight=self._kl_weight,
            temp_init=1.0,
            remap=kw["remap"],
            stochastic_eval=self._stochastic_eval,
        )

    def init_loss(self) -> nn.Module:
        loss = super().init_loss()
        loss.n_classes = self.n_embed
        return loss

    def temperature_scheduling(self, global_step: int) -> float:
        """Set the quantizer temperature from the schedule for `global_step`; returns it."""
        if self.temperature_scheduler is not None:
            self.quantize.temperature = float(self.temperature_scheduler(global_step))
        return self.quantize.temperature


class EMAVQ(VQModel):
    """VQGAN whose codebook is an EMA of the encodings (`EMAVectorQuantizer`).

    The original class could not be built (its quantizer raised NameError) and ignored its
    `ckpt_path`; both are fixed. The trainer must leave the quantizer out of the optimiser.
    """

    def __init__(
        self,
        ddconfig: dict,
        lossconfig: dict | None,
        n_embed: int,
        embed_dim: int,
        ckpt_path: str | None = None,
        ignore_keys: Sequence[str] = (),
        image_key: str = "image",
        colorize_nlabels: int | None = None,
        monitor: str | None = None,
        remap: str | None = None,
        sane_index_shape: bool = False,
        beta: float = 0.25,
        decay: float = 0.99,
    ) -> None:
        self._decay = decay
        super().__init__(
            ddconfig=ddconfig,
            n_embed=n_embed,
            embed_dim=embed_dim,
            lossconfig=lossconfig,
            ckpt_path=ckpt_path,
            ignore_keys=ignore_keys,
            image_key=image_key,
            colorize_nlabels=colorize_nlabels,
            monitor=monitor,
            remap=remap,
            sane_index_shape=sane_index_shape,
            beta=beta,
        )

    def _build_quantizer(self, **kw: Any) -> nn.Module:
        return EMAVectorQuantizer(
            kw["n_embed"], kw["embed_dim"], beta=kw["beta"], decay=self._decay, remap=kw["remap"]
        )
