"""Keep `checkpoints/last.ckpt` current and intact: periodic, atomic, on signals and errors.

The original `main.py` saved `last.ckpt` at the end of every epoch (`ModelCheckpoint`), on
`SIGUSR1` and when `fit` raised (`melk`). Here:

- `AtomicCheckpointIO` writes every checkpoint to a temporary file in the same folder and
  renames it over the target (`os.replace`), so a process killed mid-write (even by SIGKILL)
  leaves the previous file intact;
- `LastCheckpoint` writes `last.ckpt` every `every_n_steps` generator steps, at the end of each
  epoch and of training, and, when training is interrupted, before the process stops:
  * `SIGTERM` and `SIGUSR1` (where the platform has it): the current step finishes, the
    checkpoint is written, and training stops cleanly (`stopped_by` names the signal);
    the decision is synchronised across processes;
  * any exception during training (Ctrl-C included): the checkpoint is written as it is at
    that moment (rank 0 only in a multi-process run), like the original's `melk`, unless
    nothing was trained since the start.

Checkpoints are never written with non-finite weights or optimizer moments (the finite-loss
guard, `taming.train.finite`): such a write raises `NonFiniteLossError` and the previous file
stays. A full disk is reported as `OSError(ENOSPC)` naming the file. Checkpoints are read back
with the restricted (`weights_only`) unpickler only; `read_resume_checkpoint` tells ours from
an original PL 1.x checkpoint (a warm start, `warm_start`) and turns an empty, truncated or
foreign file into one line.

Checkpoints leave out the frozen VGG16 trunk of LPIPS (`model.loss.perceptual_loss.net.*`,
58 MB that never change and come from the weights file); `VQGANModule` puts them back from
its own copy when a checkpoint is restored, and `taming.load` does not need them.
"""

from __future__ import annotations

import errno
import logging
import os
import pickle
import signal
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins.io.torch_io import TorchCheckpointIO
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.exceptions import SIGTERMException

from taming.compat.checkpoint import (
    CheckpointError,
    UnsafeCheckpointError,
    read_checkpoint,
    torch_load,
)
from taming.train.finite import NonFiniteLossError, all_finite

logger = logging.getLogger(__name__)

__all__ = ["AtomicCheckpointIO", "LastCheckpoint", "read_resume_checkpoint", "warm_start"]

STOP_SIGNALS = ("SIGTERM", "SIGUSR1")


class AtomicCheckpointIO(TorchCheckpointIO):
    """`torch.save` to `.<name>.<pid>.tmp`, fsync, then rename over the target."""

    def save_checkpoint(
        self, checkpoint: dict[str, Any], path: str | os.PathLike, storage_options: Any = None
    ) -> None:
        if storage_options is not None or "://" in str(path):
            super().save_checkpoint(checkpoint, path, storage_options=storage_options)
            return
        path = Path(path)
        if not all_finite(checkpoint.get("state_dict")) or not all_finite(
            checkpoint.get("optimizer_states")
        ):
            raise NonFiniteLossError(
                f"not writing {path.name}: the weights or optimizer moments at step "
                f"{checkpoint.get('global_step')} are not finite (the previous file stays)"
            )
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as f:
                torch.save(checkpoint, f)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except OSError as e:
            if e.errno == errno.ENOSPC:
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
            raise
        except RuntimeError as e:  # torch's zip writer: "[enforce fail ...] file write failed"
            if "write" not in str(e) and "unexpected pos" not in str(e):
                raise
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path)) from e
        finally:
            tmp.unlink(missing_ok=True)

    def load_checkpoint(
        self, path: str | os.PathLike, map_location: Any = None, weights_only: Any = None
    ) -> dict[str, Any]:
        """Read with the restricted unpickler only (our checkpoints need nothing else)."""
        if "://" in str(path):
            return super().load_checkpoint(path, map_location=map_location, weights_only=True)
        try:
            return torch_load(path, weights_only=True)
        except pickle.UnpicklingError as e:
            raise CheckpointError(
                f"{Path(path).name}: refused by the restricted unpickler "
                f"({str(e).splitlines()[0][:160]})"
            ) from e


def read_resume_checkpoint(path: Path) -> dict[str, Any] | None:
    """The content of one of our (Lightning 2) checkpoints, or None for another kind.

    None means the file holds pickled classes the restricted unpickler does not take (an
    original PL 1.x checkpoint, or a hostile file: `warm_start` reads it through
    `read_checkpoint`, which refuses code) or has no Lightning loop state. An empty, truncated
    or foreign file raises `CheckpointError` (one line naming it).
    """
    if Path(path).suffix == ".safetensors":  # weights only: a warm start
        return None
    try:
        content = torch_load(path, mmap=True, weights_only=True)
    except pickle.UnpicklingError:
        return None
    if not isinstance(content, dict) or "loops" not in content:
        return None
    return content


def checkpoint_steps(content: dict[str, Any]) -> tuple[int, int]:
    """`(Lightning global_step, generator step_count or -1)` of one of our checkpoints."""
    global_step = int(content.get("global_step", 0))
    step_count = content.get("taming", {}).get("step_count")
    return global_step, int(step_count) if step_count is not None else -1


def warm_start(module: Any, ckpt: Path) -> None:
    """Load an original (PL 1.x) checkpoint's weights and step count; optimizers start afresh."""
    try:
        content = read_checkpoint(ckpt)
    except UnsafeCheckpointError as e:  # its hint names --unsafe, which train does not take
        reason = str(e).split(". If you trust")[0]
        raise UnsafeCheckpointError(
            f"{reason}. `taming train` never unpickles code; if you trust the file, convert it "
            f"once (taming convert --unsafe {ckpt.name} weights.safetensors) and pass "
            "--resume_from_checkpoint weights.safetensors"
        ) from None
    state = content.get("state_dict")
    if not isinstance(state, dict):
        raise CheckpointError(f"{ckpt}: no state_dict")
    module.model.load_checkpoint_state(state, source=str(ckpt))
    module.step_count = int(content.get("global_step", 0) or 0)
    logger.warning(
        "%s is not a Lightning 2 checkpoint: loaded its weights and step count (%d); the "
        "optimizer states start afresh",
        ckpt,
        module.step_count,
    )


class LastCheckpoint(Callback):
    """Write `<dirpath>/last.ckpt` periodically, at epoch/training end, on signals and errors.

    Args:
        dirpath: the run's `checkpoints/` folder.
        every_n_steps: also write every this many generator steps (None or 0: only at epoch
            ends, on signals and errors).
        filename: checkpoint file name.
        stop_signals: signal names that save and stop training (missing ones are ignored).
    """

    def __init__(
        self,
        dirpath: str | os.PathLike,
        every_n_steps: int | None = 500,
        filename: str = "last.ckpt",
        stop_signals: Sequence[str] = STOP_SIGNALS,
    ) -> None:
        super().__init__()
        self.dirpath = Path(dirpath)
        self.every_n_steps = int(every_n_steps or 0)
        self.filename = filename
        self.stop_signals = tuple(stop_signals)
        self.requested: str | None = None
        self.stopped_by: str | None = None
        self.exception: BaseException | None = None
        self.saved_path: Path | None = None
        self._saved_at: int | None = None
        self._start_step: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def path(self) -> Path:
        return self.dirpath / self.filename

    # -- saving -----------------------------------------------------------------------------

    def save(self, trainer: pl.Trainer, reason: str = "") -> None:
        """Write the checkpoint now (a collective call in multi-process runs)."""
        trainer.save_checkpoint(self.path, weights_only=False)
        self._saved_at = trainer.global_step
        self.saved_path = self.path
        log = logger.info if reason else logger.debug
        log("saved %s%s", self.path, f" ({reason})" if reason else "")

    def _save_once(self, trainer: pl.Trainer, reason: str = "") -> None:
        if self._saved_at != trainer.global_step:
            self.save(trainer, reason)

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        if trainer.is_global_zero and self.dirpath.is_dir():
            for stale in self.dirpath.glob(".*.tmp"):  # left by a process killed mid-write
                stale.unlink(missing_ok=True)

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start_step = trainer.global_step
        self._saved_at = trainer.global_step  # a resumed run starts from this very state
        self._install_handlers()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        stop = self.requested is not None or bool(trainer.received_sigterm)
        if trainer.world_size > 1:
            stop = trainer.strategy.reduce_boolean_decision(stop, all=False)
        if stop:
            self.stopped_by = self.requested or ("SIGTERM" if trainer.received_sigterm else "")
            self.stopped_by = self.stopped_by or "a signal to another process"
            self._save_once(trainer, f"stopping on {self.stopped_by}")
            trainer.should_stop = True
            return
        step = int(getattr(pl_module, "step_count", trainer.global_step))
        if self.every_n_steps and step > 0 and step % self.every_n_steps == 0:
            self._save_once(trainer)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_once(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._save_once(trainer)
        self._restore_handlers()

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self._restore_handlers()
        self.exception = exception
        if self._start_step is None or trainer.global_step == self._start_step:
            return  # nothing trained in this process: keep whatever last.ckpt holds
        if self._saved_at == trainer.global_step:
            return
        if isinstance(exception, NonFiniteLossError):
            return  # the state is not trustworthy: keep the last finite checkpoint
        what = type(exception).__name__
        try:
            if trainer.world_size == 1 or isinstance(exception, SIGTERMException):
                self.save(trainer, f"after {what}")
            elif trainer.is_global_zero:
                # other processes may be gone: no collective calls
                checkpoint = trainer._checkpoint_connector.dump_checkpoint(weights_only=False)
                trainer.strategy.checkpoint_io.save_checkpoint(checkpoint, self.path)
                self._saved_at = trainer.global_step
                self.saved_path = self.path
                logger.info("saved %s (after %s)", self.path, what)
        except Exception as e:  # never mask the original error
            logger.error("could not save %s after %s: %s", self.path, what, e)

    # -- signals ----------------------------------------------------------------------------

    def _handler(self, name: str, previous: Any) -> Callable[[int, Any], None]:
        def handle(signum: int, frame: Any) -> None:
            if self.requested is None:
                self.requested = name
                logger.warning(
                    "received %s: saving a checkpoint and stopping after this step", name
                )
            if callable(previous):
                previous(signum, frame)

        return handle

    def _install_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for name in self.stop_signals:
            signum = getattr(signal, name, None)
            if signum is None or signum in self._previous:
                continue
            try:
                previous = signal.getsignal(signum)
                signal.signal(signum, self._handler(name, previous))
            except (OSError, ValueError, RuntimeError):  # not settable here
                continue
            self._previous[signum] = previous

    def _restore_handlers(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        for signum, previous in self._previous.items():
            try:
                signal.signal(signum, previous if previous is not None else signal.SIG_DFL)
            except (OSError, ValueError, RuntimeError):
                pass
        self._previous = {}
