"""`Net2NetTransformer`: a GPT over VQGAN codes, conditioned on a tokenised condition.

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021),
section 3.2. A frozen first stage (VQGAN) turns images into code sequences, a frozen cond stage
turns the condition into a token prefix, a permuter fixes the order of the image codes, and the
transformer models `p(s_i | c, s_<i)`:

    x (B, 3, H, W) -> first stage -> z_indices (B, h*w) -> permuter
    c              -> cond stage  -> c_indices (B, Lc)
    transformer(cat(c_indices, z_indices)[:, :-1]) -> logits[:, Lc-1:] ~ z_indices

Method names and signatures are the original's (`forward`, `encode_to_z`, `encode_to_c`,
`decode_to_img`, `sample`, `get_input`, `get_xc`, `shared_step`, `log_images`), so downstream
code keeps working. Differences, each a fix or an addition:

- `encode_to_c` always returns `(B, Lc)` indices (the original left flat `(B*h*w,)` indices of
  VQ cond stages unbatched, which broke segmentation/depth models; SPEC §10.2).
- `sample` decodes with a static KV cache (`use_cache=False` recomputes like the original) and
  adds top-p, classifier-free guidance and a seedable generator (a thin wrapper over
  `taming.sampling.sample_tokens` with a `SamplingConfig`).
- The model answers what image-level sampling needs (device, factor, window, conditions,
  one sampling route, decoding on `VQModel.decode_code`): `taming.cond.generation`.
- Classifier-free guidance training: with `cond_drop_prob > 0` the condition of each training
  sample is replaced by `null_token` with that probability.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from taming.compat.checkpoint import (
    CheckpointError,
    filter_state_dict,
    load_state_dict_strict,
    read_state_dict,
    strip_trainer_prefix,
)
from taming.compat.pretrained import PretrainedMixin
from taming.cond.generation import Net2NetSampling
from taming.cond.stages import SOSProvider
from taming.config import ConfigError, instantiate_from_config, to_container
from taming.runref import resolve_net2net_configs
from taming.sampling.config import SamplingConfig, resolve_config
from taming.sampling.sample import complete_tokens, sample_tokens
from taming.transformer.gpt import DROP_KEY_SUFFIXES, GPT, gpt_checkpoint_filter

logger = logging.getLogger(__name__)

__all__ = ["Net2NetTransformer"]

_IDENTITY_PERMUTER = {"target": "taming.modules.transformer.permuter.Identity"}


class Net2NetTransformer(PretrainedMixin, Net2NetSampling, nn.Module):
    """Conditional autoregressive transformer over first-stage codes.

    Args:
        transformer_config: `{target, params}` of the GPT.
        first_stage_config: `{target, params}` of the (frozen) VQGAN.
        cond_stage_config: `{target, params}` of the cond stage, or `"__is_first_stage__"`
            (the first stage tokenises the condition too) or `"__is_unconditional__"`.
        permuter_config: `{target, params}` of the image-token permuter (default Identity).
        ckpt_path: checkpoint to load at construction.
        ignore_keys: key prefixes to drop from `ckpt_path`.
        first_stage_key: batch key of the images.
        cond_stage_key: batch key of the condition.
        downsample_cond_size: resize the condition to this size first (nearest; -1: off).
        pkeep: probability of keeping each input image token in training (the rest are
            replaced by random tokens; targets stay clean).
        sos_token: start token of unconditional models.
        unconditional: same as `cond_stage_config: __is_unconditional__`.
        cond_drop_prob: probability of replacing a training sample's condition by
            `null_token` (classifier-free guidance training; 0: off).
        null_token: token id of the dropped condition (default: `n_classes` for class
            conditioning, else `vocab_size - 1`).
    """

    def __init__(
        self,
        transformer_config: dict,
        first_stage_config: dict,
        cond_stage_config: dict | str,
        permuter_config: dict | None = None,
        ckpt_path: str | None = None,
        ignore_keys: Sequence[str] = (),
        first_stage_key: str = "image",
        cond_stage_key: str = "depth",
        downsample_cond_size: int = -1,
        pkeep: float = 1.0,
        sos_token: int = 0,
        unconditional: bool = False,
        cond_drop_prob: float = 0.0,
        null_token: int | None = None,
    ) -> None:
        super().__init__()
        transformer_config, first_stage_config, cond_stage_config = resolve_net2net_configs(
            transformer_config, first_stage_config, cond_stage_config
        )  # stages named by their run (`run: logs/...`), null GPT sizes (taming.runref)
        self.be_unconditional = unconditional
        self.sos_token = sos_token
        self.first_stage_key = first_stage_key
        self.cond_stage_key = cond_stage_key
        self.first_stage_model = self._frozen(
            self._build_stage(first_stage_config, "first_stage_config")
        )
        cond_stage_config = to_container(cond_stage_config)
        if cond_stage_config == "__is_first_stage__":
            logger.info("using the first stage also as the cond stage")
            self.cond_stage_model = self.first_stage_model
        elif cond_stage_config == "__is_unconditional__" or self.be_unconditional:
            logger.info(
                "unconditional model: SOS token %d, cond_stage_key -> %s",
                sos_token,
                first_stage_key,
            )
            self.be_unconditional = True
            self.cond_stage_key = self.first_stage_key
            self.cond_stage_model = SOSProvider(self.sos_token)
        else:
            self.cond_stage_model = self._frozen(
                self._build_stage(cond_stage_config, "cond_stage_config")
            )
        self.permuter = instantiate_from_config(
            to_container(permuter_config) or _IDENTITY_PERMUTER, where="permuter_config"
        )
        self.transformer: GPT = instantiate_from_config(
            transformer_config, where="transformer_config"
        )
        self.downsample_cond_size = downsample_cond_size
        self.pkeep = pkeep
        if not 0.0 <= cond_drop_prob < 1.0:
            raise ConfigError(f"cond_drop_prob: must lie in [0, 1), got {cond_drop_prob}")
        self.cond_drop_prob = cond_drop_prob
        if null_token is None:
            n_classes = getattr(self.cond_stage_model, "n_classes", None)
            null_token = n_classes if n_classes is not None else self.transformer.vocab_size - 1
        if not 0 <= null_token < self.transformer.vocab_size:
            raise ConfigError(f"null_token: {null_token} is outside the vocabulary")
        self.null_token = null_token
        if ckpt_path is not None:
            self.init_from_ckpt(ckpt_path, ignore_keys=ignore_keys)

    # -- construction ----------------------------------------------------------------------

    @staticmethod
    def _build_stage(config: Any, where: str) -> nn.Module:
        """Instantiate a stage; its `ckpt_path` may be an original checkpoint or the
        `last.ckpt` of a `taming train` run (see `VQModel.init_from_ckpt`)."""
        try:
            return instantiate_from_config(config, where=where)
        except CheckpointError as e:
            raise CheckpointError(
                f"{where}.params.ckpt_path: {e}. Point it at the stage's checkpoint, set it to "
                "null, or load a full transformer checkpoint with taming.load(..., "
                "stage_ckpts=False)"
            ) from None

    @staticmethod
    def _frozen(model: nn.Module) -> nn.Module:
        """Eval mode and no gradients; `Net2NetTransformer.train()` keeps it in eval mode."""
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        return model

    def train(self, mode: bool = True) -> Net2NetTransformer:
        """Switch the transformer (and permuter); the stages always stay in eval mode."""
        super().train(mode)
        self.first_stage_model.eval()
        self.cond_stage_model.eval()
        return self

    def checkpoint_key_rule(self, key: str) -> bool:
        """Keys dropped by rule: stage losses (never used here) and the GPT's `attn.mask`."""
        if key.startswith(("first_stage_model.loss.", "cond_stage_model.loss.")):
            return True
        return key.startswith("transformer.") and key.endswith(DROP_KEY_SUFFIXES)

    def load_checkpoint_state(
        self,
        state_dict: Mapping[str, torch.Tensor],
        ignore_keys: Sequence[str] = (),
        source: str = "checkpoint",
    ) -> None:
        """Filter an original-layout state dict by rule and load it strictly."""
        masks = {
            k[len("transformer.") :]: v
            for k, v in state_dict.items()
            if k.startswith("transformer.") and k.endswith(".attn.mask")
        }
        gpt_checkpoint_filter(masks, self.transformer)  # a mask of another shape is an error
        sd = filter_state_dict(state_dict, drop=ignore_keys, drop_rule=self.checkpoint_key_rule)
        load_state_dict_strict(
            self,
            sd,
            allow_missing=lambda k: k.endswith(".colorize"),
            source=source,
        )

    def init_from_ckpt(self, path: str, ignore_keys: Sequence[str] = (), unsafe: bool = False):
        """Load an original-layout checkpoint of the whole model."""
        sd = strip_trainer_prefix(read_state_dict(path, unsafe=unsafe))  # ours or original
        self.load_checkpoint_state(sd, ignore_keys=ignore_keys, source=str(path))
        logger.info("restored Net2NetTransformer from %s", path)

    # -- tokenisation ----------------------------------------------------------------------

    @torch.no_grad()
    def encode_to_z(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images (B, C, H, W) -> (quant_z (B, D, h, w), permuted indices (B, h*w)).

        Runs outside autocast (mixed-precision training), so the codes are those that
        sampling and `taming.load` users see.
        """
        with torch.autocast(device_type=x.device.type, enabled=False):
            quant_z, _, info = self.first_stage_model.encode(x)
        indices = info[2].reshape(quant_z.shape[0], -1)  # (B, h*w), raster order
        return quant_z, self.permuter(indices)

    @torch.no_grad()
    def encode_to_c(self, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Condition -> (quant_c, indices (B, Lc)); always batched (fixes the original)."""
        if self.downsample_cond_size > -1:
            s = self.downsample_cond_size
            c = F.interpolate(c, size=(s, s))
        with torch.autocast(device_type=c.device.type, enabled=False):  # as encode_to_z
            quant_c, _, info = self.cond_stage_model.encode(c)
        indices = info[2]
        return quant_c, indices.reshape(quant_c.shape[0], -1).long()

    @torch.no_grad()
    def decode_to_img(self, index: torch.Tensor, zshape: Sequence[int]) -> torch.Tensor:
        """Permuted indices (B, h*w) and the latent shape (B, D, h, w) -> images (the
        original's signature, on `decode_codes`)."""
        codes = self.permuter(index, reverse=True).reshape(zshape[0], zshape[2], zshape[3])
        return self.decode_codes(codes)

    # -- training --------------------------------------------------------------------------

    def drop_condition(self, c_indices: torch.Tensor) -> torch.Tensor:
        """Replace whole conditions by `null_token` with probability `cond_drop_prob`."""
        if not (self.training and self.cond_drop_prob > 0 and not self.be_unconditional):
            return c_indices
        drop = torch.rand(c_indices.shape[0], device=c_indices.device) < self.cond_drop_prob
        return torch.where(drop[:, None], torch.full_like(c_indices, self.null_token), c_indices)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Teacher-forced logits for the image tokens: `(logits (B, Lz, V), target (B, Lz))`."""
        _, z_indices = self.encode_to_z(x)
        _, c_indices = self.encode_to_c(c)
        c_indices = self.drop_condition(c_indices)
        if self.training and self.pkeep < 1.0:
            keep = torch.bernoulli(self.pkeep * torch.ones_like(z_indices, dtype=torch.float))
            noise = torch.randint_like(z_indices, self.transformer.vocab_size)
            a_indices = torch.where(keep.bool(), z_indices, noise)
        else:
            a_indices = z_indices
        cz_indices = torch.cat((c_indices, a_indices), dim=1)
        logits, _ = self.transformer(cz_indices[:, :-1])
        logits = logits[:, c_indices.shape[1] - 1 :]  # the last cond position predicts z_0
        return logits, z_indices

    def get_input(self, key: str, batch: Mapping[str, Any]) -> torch.Tensor:
        """Batch entry as the original: (B, H, W[, C]) -> (B, C, H, W); float64 -> float32.

        Class labels (B,) and token lists (B, L) pass through; integer maps keep their dtype.
        """
        x = torch.as_tensor(batch[key])
        if x.ndim == 3:
            x = x[..., None]  # (B, H, W) -> (B, H, W, 1)
        if x.ndim == 4:
            x = x.permute(0, 3, 1, 2).contiguous()  # (B, H, W, C) -> (B, C, H, W)
        if x.dtype == torch.float64:
            x = x.float()
        return x

    def get_xc(
        self, batch: Mapping[str, Any], N: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, condition) of a batch, optionally the first N."""
        x = self.get_input(self.first_stage_key, batch)
        c = self.get_input(self.cond_stage_key, batch)
        if N is not None:
            x, c = x[:N], c[:N]
        return x, c

    def shared_step(self, batch: Mapping[str, Any], batch_idx: int | None = None) -> torch.Tensor:
        """Mean cross-entropy of the image tokens."""
        x, c = self.get_xc(batch)
        logits, target = self(x.to(self.device), c.to(self.device))
        return F.cross_entropy(logits.reshape(-1, logits.size(-1)), target.reshape(-1))

    # -- sampling --------------------------------------------------------------------------

    @torch.no_grad()
    def sample(
        self,
        x: torch.Tensor,
        c: torch.Tensor,
        steps: int,
        temperature: float = 1.0,
        sample: bool = False,
        top_k: int | None = None,
        callback: Callable[[int], Any] | None = None,
        *,
        config: SamplingConfig | None = None,
        generator: torch.Generator | None = None,
        progress: bool = False,
        **settings: Any,
    ) -> torch.Tensor:
        """Draw `steps` image tokens after the condition `c` (B, Lc) and given tokens `x`.

        The original signature; returns `(B, Lx + steps)` (the given tokens are kept). A
        thin wrapper over `taming.sampling.sample_tokens`: `config` (a `SamplingConfig`) or
        keyword fields of it (`top_p`, `use_cache`, `cfg_scale`) add nucleus filtering, the
        KV cache switch and classifier-free guidance (with `null_token`); `temperature`,
        `sample` and `top_k` apply when no `config` is given.
        """
        if self.transformer.training:
            raise RuntimeError("sample() needs the transformer in eval mode (call .eval())")
        if config is None:
            config = SamplingConfig(temperature=temperature, sample=sample, top_k=top_k)
        config = resolve_config(config, settings)
        step_cb = None if callback is None else (lambda k, _probs: callback(k))
        null = torch.full_like(c[:1], self.null_token) if config.guided else None
        return sample_tokens(
            self.transformer,
            c,
            steps,
            config,
            generator=generator,
            callback=step_cb,
            progress=progress,
            x=x,
            null_cond=null,
        )

    @torch.no_grad()
    def complete(
        self,
        z_indices: torch.Tensor,
        known: torch.Tensor,
        c_indices: torch.Tensor,
        config: SamplingConfig | None = None,
        **kwargs: Any,
    ) -> torch.Tensor:
        """Keep the `known` (bool, (L,) or (B, L)) tokens of `z_indices` and sample the rest."""
        return complete_tokens(self.transformer, c_indices, z_indices, known, config, **kwargs)

    @torch.no_grad()
    def log_images(
        self,
        batch: Mapping[str, Any],
        temperature: float | None = None,
        top_k: int | None = None,
        callback: Callable[[int], Any] | None = None,
        N: int = 4,
        conditional_builder: Any = None,
        label_for_category_no: Callable[[int], str] | None = None,
        **kwargs: Any,
    ) -> dict[str, torch.Tensor]:
        """Inputs, reconstructions, half/zero-pixel samples and greedy samples, as images.

        Layout conditions (`objects_bbox`, `objects_center_points` token lists) are drawn as
        `conditioning` with `conditional_builder.plot` when a builder is given (the original
        took it from the trainer's validation dataset; `Net2NetModule` passes it), labelled
        by `label_for_category_no` (default: the category number).
        """
        device = self.device
        x, c = self.get_xc(batch, N)
        x, c = x.to(device), c.to(device)
        quant_z, z_indices = self.encode_to_z(x)
        quant_c, c_indices = self.encode_to_c(c)
        steps = z_indices.shape[1]
        half = z_indices[:, : steps // 2]
        t, k = temperature or 1.0, top_k or 100
        half_sample = self.sample(half, c_indices, steps - half.shape[1], t, True, k, callback)
        nopix = self.sample(z_indices[:, :0], c_indices, steps, t, True, k, callback)
        det = self.sample(z_indices[:, :0], c_indices, steps, sample=False, callback=callback)
        log = {
            "inputs": x,
            "reconstructions": self.decode_to_img(z_indices, quant_z.shape),
            "samples_half": self.decode_to_img(half_sample, quant_z.shape),
            "samples_nopix": self.decode_to_img(nopix, quant_z.shape),
            "samples_det": self.decode_to_img(det, quant_z.shape),
        }
        if conditional_builder is not None and c.ndim == 2 and c.shape[1] > 1:
            plots = _plot_layouts(conditional_builder, c, label_for_category_no, x.shape[-2:])
            if plots is not None:
                log["conditioning"] = plots.to(x)
        if self.cond_stage_key not in ("class_label", self.first_stage_key) and c.ndim == 4:
            if c.shape[1] > 3 and hasattr(self.cond_stage_model, "to_rgb"):
                rec = self.cond_stage_model.decode(quant_c)
                rec = F.one_hot(rec.argmax(dim=1), num_classes=rec.shape[1])
                rec = rec.permute(0, 3, 1, 2).float()  # (B, h, w, K) -> (B, K, h, w)
                log["conditioning_rec"] = self.cond_stage_model.to_rgb(rec)
                log["conditioning"] = self.cond_stage_model.to_rgb(c)
            else:
                log["conditioning"] = c
        return log


def _plot_layouts(
    builder: Any,
    c: torch.Tensor,
    label_for_category_no: Callable[[int], str] | None,
    size: Sequence[int],
) -> torch.Tensor | None:
    """Layout plots `(B, 3, H, W)` in [-1, 1] of token lists `c (B, L)`; None if it fails."""
    label = label_for_category_no or (lambda no: str(no))
    figure_size = (int(size[1]), int(size[0]))  # (width, height)
    try:
        return torch.stack([builder.plot(row.cpu(), label, figure_size) for row in c])
    except Exception as e:  # a display aid: never let it stop training
        logger.warning("could not plot the layout conditioning: %s: %s", type(e).__name__, e)
        return None
