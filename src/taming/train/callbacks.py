"""Training callbacks: input/reconstruction image grids and the skipped-file report.

`ImageLogger` follows the original `main.ImageLogger` (`batch_frequency=750, max_images=4,
clamp=True, increase_log_steps=True`): grids of `log_images(batch)` are written to
`<run>/images/{train,val}/<key>_gs-<step:06>_e-<epoch:06>_b-<batch:06>.png`
(`taming.images.make_grid`, 4 per row, black padding). Training grids are written when the
generator-step count is a multiple of `batch_frequency` and, with `increase_log_steps`, also at
steps 1, 2, 4, ... below it (the original keyed this on the per-epoch batch index, which repeats
every epoch); one validation grid (of the first batch) is written per validation run.

`ProgressBar` is Lightning's tqdm bar, with a total and an ETA in the first epoch of a run
resumed mid-epoch too (Lightning does not start that epoch anew, so its bar read `N/?`).

`SkippedFilesReport` logs, per epoch, how many unreadable images the datasets skipped
(metric `data/skipped_<split>`), with a warning naming the files when the count grows.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback, TQDMProgressBar

from taming.images import make_grid

logger = logging.getLogger(__name__)

__all__ = ["ConfigSnapshot", "ImageLogger", "ProgressBar", "SkippedFilesReport", "save_image_grid"]


def save_image_grid(
    images: torch.Tensor, path: str | Path, nrow: int = 4, clamp: bool = True
) -> Path:
    """Write images in [-1, 1] (B, C, H, W) as one PNG grid (black padding); returns the path.

    1-channel images are written as grayscale; more than 3 channels are cut to the first 3.
    Values outside [-1, 1] are clipped either way (`clamp` is the original's flag).
    """
    x = images.detach().float().cpu()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(x[:, :3], nrow=min(nrow, x.shape[0]), pad_value=-1.0).save(path)
    return path


class ImageLogger(Callback):
    """Write input/reconstruction grids during training and validation.

    Args:
        batch_frequency: write training grids every this many generator steps.
        max_images: images per grid.
        clamp: clamp to [-1, 1] before scaling to [0, 255].
        increase_log_steps: also write at steps 1, 2, 4, ... below `batch_frequency`.
        disabled: write nothing.
        log_first_step: also write at step 0 (the untrained model).
        nrow: images per grid row.
        save_dir: where `images/` goes (default: the trainer's `default_root_dir`).
        log_images_kwargs: extra keyword arguments of the module's `log_images` (e.g.
            `top_k`, `temperature` of a transformer's samples). `N=max_images` is always
            passed, so a transformer samples only the images that are written.
    """

    def __init__(
        self,
        batch_frequency: int = 750,
        max_images: int = 4,
        clamp: bool = True,
        increase_log_steps: bool = True,
        disabled: bool = False,
        log_first_step: bool = False,
        nrow: int = 4,
        save_dir: str | None = None,
        log_images_kwargs: dict[str, Any] | None = None,
    ) -> None:
        super().__init__()
        self.batch_freq = max(1, int(batch_frequency))
        self.max_images = max_images
        self.clamp = clamp
        self.increase_log_steps = increase_log_steps
        self.disabled = disabled
        self.log_first_step = log_first_step
        self.nrow = nrow
        self.save_dir = save_dir
        self.log_images_kwargs = dict(log_images_kwargs or {})
        self.written: list[Path] = []

    def _due(self, step: int) -> bool:
        if step == 0:
            return self.log_first_step
        if step % self.batch_freq == 0:
            return True
        return self.increase_log_steps and step < self.batch_freq and step & (step - 1) == 0

    def log_images(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, split: str, idx: int
    ) -> None:
        if self.disabled or not trainer.is_global_zero or not hasattr(pl_module, "log_images"):
            return
        was_training = pl_module.training
        pl_module.eval()
        try:
            with torch.no_grad():
                images = pl_module.log_images(
                    batch, split=split, N=self.max_images, **self.log_images_kwargs
                )
        finally:
            pl_module.train(was_training)
        root = Path(self.save_dir or trainer.default_root_dir) / "images" / split
        step = int(getattr(pl_module, "step_count", trainer.global_step))
        for key, value in images.items():
            if not isinstance(value, torch.Tensor) or value.ndim != 4:
                continue
            name = f"{key}_gs-{step:06}_e-{trainer.current_epoch:06}_b-{idx:06}.png"
            path = save_image_grid(
                value[: self.max_images], root / name, nrow=self.nrow, clamp=self.clamp
            )
            self.written.append(path)

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        step = int(getattr(pl_module, "step_count", trainer.global_step))
        if self._due(step) and getattr(self, "_last_step", None) != step:
            self._last_step = step
            self.log_images(trainer, pl_module, batch, "train", batch_idx)

    def on_validation_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
        dataloader_idx: int = 0,
    ) -> None:
        if batch_idx == 0 and not trainer.sanity_checking:
            self.log_images(trainer, pl_module, batch, "val", batch_idx)


class ProgressBar(TQDMProgressBar):
    """Lightning's training bar; after a mid-epoch resume it shows the epoch's total and ETA."""

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        super().on_train_start(trainer, pl_module)
        done = int(trainer.fit_loop.epoch_loop.batch_progress.current.ready)
        if done > 0:  # resumed inside an epoch: on_train_epoch_start will not run for it
            self.on_train_epoch_start(trainer, pl_module)
            bar = self.train_progress_bar
            bar.initial = done  # the rate (and so the ETA) counts only this run's batches
            bar.n = done
            bar.refresh()

    def on_train_epoch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        if self._train_progress_bar is not None:
            self._train_progress_bar.initial = 0  # a fresh epoch after a resumed one
        super().on_train_epoch_start(trainer, *args)


class SkippedFilesReport(Callback):
    """Report unreadable files skipped by the datasets (`DataModuleFromConfig.skipped_files`)."""

    def __init__(self) -> None:
        super().__init__()
        self.reported: dict[str, int] = {}

    def report(self, trainer: pl.Trainer, pl_module: pl.LightningModule | None = None) -> None:
        dm = trainer.datamodule
        if dm is None or not hasattr(dm, "skipped_files"):
            return
        for split, (count, paths) in dm.skipped_files().items():
            total = count
            if trainer.world_size > 1:
                t = torch.tensor(float(count), device=trainer.strategy.root_device)
                total = int(trainer.strategy.reduce(t, reduce_op="sum").item())
            if pl_module is not None and trainer.training:
                pl_module.log(f"data/skipped_{split}", float(total), on_step=False, on_epoch=True)
            if total > self.reported.get(split, 0):
                shown = ", ".join(paths[:5]) + (" ..." if len(paths) > 5 else "")
                logger.warning(
                    "data: %d unreadable file(s) skipped in the %s set so far (%s)",
                    total,
                    split,
                    shown or "on other processes",
                )
                self.reported[split] = total

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.report(trainer)


def _free_timestamp(cfgdir: Path, now: str) -> str:
    """`now`, or the next second without config files yet (a resume within the same second
    must not overwrite the snapshot it was started from; names keep sorting by time)."""
    from datetime import datetime, timedelta

    fmt = "%Y-%m-%dT%H-%M-%S"
    try:
        t = datetime.strptime(now, fmt)
    except ValueError:
        return now
    while (cfgdir / f"{t.strftime(fmt)}-project.yaml").exists():
        t += timedelta(seconds=1)
    return t.strftime(fmt)


class ConfigSnapshot(Callback):
    """Create the run folder and save the merged configs there (rank 0; the original's
    `SetupCallback`): `configs/<now>-project.yaml` (everything but `lightning`) and
    `configs/<now>-lightning.yaml` (`lightning:` with the trainer options actually used).

    Args:
        logdir: the run folder.
        now: the run's timestamp (file name prefix).
        project: the config without its `lightning` section.
        lightning: the `lightning` section.
    """

    def __init__(self, logdir: str | Path, now: str, project: Any, lightning: Any) -> None:
        super().__init__()
        self.logdir = Path(logdir)
        self.now = now
        self.project = project
        self.lightning = lightning
        self.written = False

    def write(self) -> None:
        from omegaconf import OmegaConf

        cfgdir = self.logdir / "configs"
        for d in (self.logdir, self.logdir / "checkpoints", cfgdir):
            d.mkdir(parents=True, exist_ok=True)
        self.now = _free_timestamp(cfgdir, self.now)
        project = OmegaConf.to_yaml(OmegaConf.create(self.project), resolve=True)
        (cfgdir / f"{self.now}-project.yaml").write_text(project)
        lightning = OmegaConf.create({"lightning": self.lightning})
        (cfgdir / f"{self.now}-lightning.yaml").write_text(OmegaConf.to_yaml(lightning))
        logger.info("run folder: %s", self.logdir)
        logger.debug("project config:\n%s", project)
        self.written = True

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and not self.written:
            self.write()
