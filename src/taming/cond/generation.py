"""What sampling asks a `Net2NetTransformer`: geometry, conditions, one sampling route, decoding.

"Taming Transformers" (Esser et al., CVPR 2021, §3.2): an image of `H x W` pixels is an
`H/f x W/f` grid of first-stage codes; the transformer was trained on the grid of the first
stage's resolution (its window) and samples larger grids with a sliding window. The image-level
pipeline (`taming.pipeline`) asks the model for these facts and never reads its internals
(`ddconfig`, the GPT's weights, `isinstance` over cond stages):

- `device`, `first_stage_factor`, `training_window`, `context_size`, `latent_grid(size)`;
- `condition_kind` (`none`, `class`, `tokens`, `spatial`), `n_classes` and
  `prepare_condition(cond, n, size)`, which asks the cond stage to check and prepare what the
  user gave and encodes it: `(prefix tokens, condition code grid)`;
- `sample_codes(prefix, cond_grid, grid, config, ...)`: plain, guided, completed and
  sliding-window sampling through one route (the window's grid -> the cached token sampler,
  a larger grid -> the sliding window);
- `encode_codes(x)` and `decode_codes(codes)`: images <-> raster code grids `(B, h, w)`, the
  latter on `VQModel.decode_code` (the one way indices become pixels).

Mixed into `Net2NetTransformer`; errors a user can fix are `ConfigError`s (one line in the CLI).
"""

from __future__ import annotations

import logging
from typing import Any

import torch
from torch import Tensor

from taming.config import ConfigError
from taming.sampling.config import SamplingConfig, resolve_config
from taming.sampling.sample import StepCallback, complete_tokens, sample_tokens
from taming.sampling.sliding import sample_sliding_window

logger = logging.getLogger(__name__)

__all__ = ["Net2NetSampling"]

_PREFIX_KINDS = ("none", "class", "tokens")


class Net2NetSampling:
    """The sampling face of `Net2NetTransformer` (expects its attributes)."""

    # -- geometry ------------------------------------------------------------------------

    @property
    def device(self) -> torch.device:
        """The device of the transformer's weights."""
        return next(self.transformer.parameters()).device

    @property
    def first_stage_factor(self) -> int:
        """Downsampling factor `f` of the first stage."""
        return int(self.first_stage_model.factor)

    @property
    def training_window(self) -> tuple[int, int]:
        """Latent grid `(h, w)` the transformer was trained on: first-stage `resolution / f`."""
        f, res = self.first_stage_factor, int(self.first_stage_model.resolution)
        if res < f:
            raise ConfigError("the first stage has no ddconfig.resolution: pass window=(h, w)")
        return res // f, res // f

    @property
    def context_size(self) -> int:
        """Tokens of context the transformer can attend to (its `block_size`)."""
        return int(self.transformer.block_size)

    @property
    def raster_order(self) -> bool:
        """Whether image tokens are modelled in raster order (the Identity permuter)."""
        probe = torch.arange(4)[None]
        return bool(torch.equal(self.permuter(probe), probe))

    def latent_grid(self, size: tuple[int, int]) -> tuple[int, int]:
        """Latent grid `(h, w)` of an image size `(H, W)`; both must be multiples of `f`."""
        f = self.first_stage_factor
        H, W = size
        if H <= 0 or W <= 0 or H % f or W % f:
            raise ConfigError(
                f"size {H}x{W} (HxW) is not a positive multiple of the first stage's factor "
                f"f={f}; e.g. {max(f, H // f * f)}x{max(f, W // f * f)}"
            )
        return H // f, W // f

    def decode_memory_bytes(self, grid: tuple[int, int], batch: int = 1) -> int:
        """Rough activation memory of decoding `batch` code grids (the first stage's)."""
        return int(self.first_stage_model.decode_memory_bytes(grid[0], grid[1], batch))

    @property
    def makes_own_condition(self) -> bool:
        """Whether the cond stage builds the condition itself when none is given (FacesHQ
        coordinates)."""
        return bool(getattr(self.cond_stage_model, "makes_own_condition", False))

    # -- conditions ----------------------------------------------------------------------

    @property
    def condition_kind(self) -> str:
        """`none` (SOS), `class` (class ids), `tokens` (layout token lists) or `spatial` (a
        map the cond stage encodes: segmentation, depth, an image, coordinates)."""
        if self.be_unconditional:
            return "none"
        return getattr(self.cond_stage_model, "condition_kind", "spatial")

    @property
    def n_classes(self) -> int | None:
        """Number of classes of a class-conditional model, else None."""
        return int(self.cond_stage_model.n_classes) if self.condition_kind == "class" else None

    @property
    def condition_labels(self) -> int | None:
        """Labels of a segmentation cond stage (its one-hot channels), else None."""
        n = getattr(self.cond_stage_model, "n_labels", None)
        return int(n) if n is not None and self.condition_kind == "spatial" else None

    @property
    def condition_channels(self) -> int | None:
        """Channels of the maps a VQ cond stage encodes (1: depth, 3: an image), else None."""
        if self.condition_kind != "spatial":
            return None
        channels = getattr(self.cond_stage_model, "in_channels", None)
        return int(channels) if channels is not None else None

    @torch.no_grad()
    def condition_to_rgb(self, cond: Tensor) -> Tensor | None:
        """A displayable `(B, 3|1, H, W)` view of a spatial condition in [-1, 1], or None."""
        if cond.ndim != 4:
            return None
        if cond.shape[1] <= 3:
            return cond
        to_rgb = getattr(self.cond_stage_model, "to_rgb", None)
        return None if to_rgb is None else to_rgb(cond.to(self.device)).cpu()

    @torch.no_grad()
    def prepare_condition(
        self, cond: Any, n: int, size: tuple[int, int] | None = None
    ) -> tuple[Tensor | None, Tensor | None]:
        """What `n` samples of `size` pixels are conditioned on: `(prefix (1 or n, Lp) or
        None, condition code grid (1 or n, hc, wc) or None)`.

        The cond stage checks and prepares `cond` (`prepare_condition` of the stages in
        `taming.cond.stages`); VQ cond stages take a `(1 or n, C, H, W)` map.
        """
        prepare = getattr(self.cond_stage_model, "prepare_condition", None)
        if prepare is not None:
            c = prepare(cond, n, self.device, size)
        else:
            c = self._condition_map(cond, n)
        if self.condition_kind in _PREFIX_KINDS:
            return c, None
        quant_c, c_idx = self.encode_to_c(c)  # (B, Lc)
        hc, wc = quant_c.shape[-2:]
        if c_idx.shape[1] != hc * wc:
            return c_idx, None
        return None, c_idx.reshape(-1, hc, wc)

    def _condition_map(self, cond: Any, n: int) -> Tensor:
        if cond is None:
            raise ConfigError(
                f"the model is conditioned on '{self.cond_stage_key}': give a condition"
            )
        c = torch.as_tensor(cond).to(self.device)
        if c.ndim != 4:
            raise ConfigError(
                f"a '{self.cond_stage_key}' condition is a (B, C, H, W) map, got {tuple(c.shape)}"
            )
        if c.shape[0] not in (1, n):
            raise ConfigError(f"give 1 or {n} conditions, got {c.shape[0]}")
        return c.float() if c.dtype == torch.float64 else c

    def null_condition(self, length: int) -> Tensor:
        """The unconditional context `(1, length)` of classifier-free guidance."""
        if self.condition_kind == "none":
            raise ConfigError("--cfg-scale needs a conditional model; this one is unconditional")
        if float(self.cond_drop_prob) <= 0.0:
            logger.warning(
                "guidance, but the model was not trained with condition dropout "
                "(cond_drop_prob=0): its null token %d never appeared in training; guidance "
                "will mostly add noise",
                self.null_token,
            )
        return torch.full((1, length), int(self.null_token), dtype=torch.long, device=self.device)

    # -- sampling ------------------------------------------------------------------------

    @torch.no_grad()
    def sample_codes(
        self,
        prefix: Tensor | None,
        cond_grid: Tensor | None,
        grid: tuple[int, int],
        config: SamplingConfig | None = None,
        *,
        window: tuple[int, int] | None = None,
        tokens: Tensor | None = None,
        known: Tensor | None = None,
        generator: torch.Generator | None = None,
        callback: StepCallback | None = None,
        progress: bool = False,
        **settings: Any,
    ) -> Tensor:
        """Sample a `grid` of codes after a condition: the one route of every sampler.

        Args:
            prefix: Condition tokens `(B, Lp)` before the image, or None.
            cond_grid: Condition codes `(B, h, w)` on the image's grid, or None.
            grid: Latent grid `(h, w)`; larger than the window: sliding window.
            config: Decoding settings (keyword `settings` override fields).
            window: Training window (default `training_window`).
            tokens: Given raster codes `(B, h*w)` for completion, with
            known: their mask `(h*w,)` or `(B, h*w)` (true: keep).
            generator: Random generator of the draws.
            callback: `callback(step, probs)` after each drawn token (all rows at once).
            progress: tqdm bar over the tokens.

        Returns:
            Raster codes `(B, h, w)`.
        """
        config = resolve_config(config, settings)
        h, w = grid
        window = tuple(window) if window is not None else self.training_window
        rows = [t for t in (prefix, cond_grid, tokens) if t is not None]
        B = rows[0].shape[0]
        if tuple(grid) == window:
            parts = [t for t in (prefix, cond_grid) if t is not None]
            c = torch.cat([t.reshape(B, -1) for t in parts], dim=1)
            null = self.null_condition(c.shape[1]) if config.guided else None
            kw = dict(generator=generator, callback=callback, progress=progress, null_cond=null)
            if tokens is None:
                seq = sample_tokens(self.transformer, c, h * w, config, **kw)
            else:
                seq_tokens = self.permuter(tokens)
                mask = known.long() if known.dim() == 2 else known.long()[None]
                seq_known = self.permuter(mask).bool()
                seq = complete_tokens(self.transformer, c, seq_tokens, seq_known, config, **kw)
            return self.permuter(seq, reverse=True).reshape(B, h, w)
        if not self.raster_order:
            raise ConfigError(
                "sliding-window sampling works on raster-order tokens; this model uses the "
                f"{type(self.permuter).__name__} permuter"
            )
        null = None
        if config.guided:  # the null token in place of the prefix and the cond-grid window
            n_prefix = prefix.shape[1] if prefix is not None else 0
            n_grid = window[0] * window[1] if cond_grid is not None else 0
            null = self.null_condition(n_prefix + n_grid)
        out = sample_sliding_window(
            self.transformer,
            grid,
            cond=prefix,
            cond_grid=cond_grid,
            window=window,
            tokens=tokens,
            known=known,
            config=config,
            generator=generator,
            callback=callback,
            progress=progress,
            null_cond=null,
        )  # (B, h*w) raster order
        return out.reshape(B, h, w)

    # -- codes <-> images ----------------------------------------------------------------

    @torch.no_grad()
    def encode_codes(self, x: Tensor) -> Tensor:
        """Images `(B, C, H, W)` -> raster codes `(B, h, w)` of the first stage."""
        quant_z, z_seq = self.encode_to_z(x.to(self.device).float())
        return self.permuter(z_seq, reverse=True).reshape(x.shape[0], *quant_z.shape[-2:])

    @torch.no_grad()
    def decode_codes(self, codes: Tensor) -> Tensor:
        """Raster codes `(B, h, w)` -> images `(B, C, H, W)` (`VQModel.decode_code`)."""
        n_embed = int(self.first_stage_model.n_embed)
        top = int(codes.max()) if codes.numel() else 0
        if top >= n_embed:
            raise ConfigError(
                f"token {top} is not a code of the first stage (n_embed={n_embed}, "
                f"transformer vocab_size={self.transformer.vocab_size}): check the config"
            )
        return self.first_stage_model.decode_code(codes.to(self.device))
