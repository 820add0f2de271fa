"""Metric loggers of a run folder: `metrics.csv` (always) and TensorBoard (when installed).

Lightning's `CSVLogger` deletes an existing `metrics.csv` when its folder is not empty, which
would wipe a run's history on resume. `AppendingCSVLogger` appends to it instead (the header is
extended when new metrics appear). The CSV `step` column counts batches.

`build_loggers(logdir, config)` returns the CSV logger writing `<logdir>/metrics.csv`, a
TensorBoard logger writing `<logdir>/tensorboard/` if `tensorboard` or `tensorboardX` is
importable, and the logger of a `lightning.logger: {target, params}` config section if given
(original `pytorch_lightning.loggers.*` targets are mapped to `lightning.pytorch.loggers.*`;
the removed `TestTubeLogger` is skipped with a warning).
"""

from __future__ import annotations

import csv
import importlib.util
import logging
import os
from collections.abc import Mapping
from typing import Any

from lightning.fabric.loggers.logger import rank_zero_experiment
from lightning.pytorch.loggers import CSVLogger, Logger
from lightning.pytorch.loggers.csv_logs import ExperimentWriter

from taming.config import instantiate_from_config, to_container

logger = logging.getLogger(__name__)

__all__ = ["AppendingCSVLogger", "build_loggers", "tensorboard_available"]


class _AppendingWriter(ExperimentWriter):
    def _check_log_dir_exists(self) -> None:
        # keep an existing metrics.csv and continue its header
        if os.path.isfile(self.metrics_file_path):
            with open(self.metrics_file_path, newline="") as f:
                header = next(csv.reader(f), [])
            self.metrics_keys = [k for k in header if k]


class AppendingCSVLogger(CSVLogger):
    """`CSVLogger` writing `<save_dir>/metrics.csv` and appending to an existing one."""

    def __init__(self, save_dir: str | os.PathLike, flush_logs_every_n_steps: int = 100) -> None:
        super().__init__(
            save_dir, name="", version="", flush_logs_every_n_steps=flush_logs_every_n_steps
        )

    @property
    @rank_zero_experiment
    def experiment(self) -> ExperimentWriter:  # type: ignore[override]
        if self._experiment is None:
            os.makedirs(self.log_dir, exist_ok=True)
            self._experiment = _AppendingWriter(log_dir=self.log_dir)
        return self._experiment


def tensorboard_available() -> bool:
    return any(importlib.util.find_spec(m) is not None for m in ("tensorboard", "tensorboardX"))


_LOGGER_ALIASES = {
    "pytorch_lightning.loggers.": "lightning.pytorch.loggers.",
    "lightning.pytorch.loggers.": "lightning.pytorch.loggers.",
}


def _configured_logger(cfg: Mapping[str, Any], logdir: str) -> Logger | None:
    cfg = dict(to_container(cfg))
    target = str(cfg.get("target", ""))
    if "TestTube" in target:
        logger.warning("lightning.logger: %s no longer exists; using the CSV logger", target)
        return None
    for old, new in _LOGGER_ALIASES.items():
        if target.startswith(old):
            cfg["target"] = new + target[len(old) :]
    params = dict(cfg.get("params") or {})
    params.setdefault("save_dir", logdir)
    cfg["params"] = params
    return instantiate_from_config(cfg, where="lightning.logger")


def build_loggers(logdir: str | os.PathLike, config: Mapping[str, Any] | None = None) -> list:
    """The run's loggers (see the module docstring)."""
    logdir = os.fspath(logdir)
    loggers: list[Logger] = [AppendingCSVLogger(logdir)]
    if tensorboard_available():
        from lightning.pytorch.loggers import TensorBoardLogger

        loggers.append(TensorBoardLogger(logdir, name="tensorboard", version=""))
    if config:
        extra = _configured_logger(config, logdir)
        if extra is not None:
            loggers.append(extra)
    return loggers
