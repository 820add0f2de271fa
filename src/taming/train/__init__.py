"""Training of the first stage with Lightning 2 (the only package that imports Lightning).

- `vqgan_module.VQGANModule`: manual-optimization GAN training of a `VQModel`/`GumbelVQ`/...;
- `gan_step`: one generator + discriminator iteration without a second backward pass;
- `datamodule.DataModuleFromConfig`: the original `main.DataModuleFromConfig`;
- `checkpointing`: atomic checkpoints, `last.ckpt` on a schedule, on signals and errors;
- `callbacks`: image grids, skipped-file report, config snapshot;
- `loggers`: `metrics.csv` (appending on resume) and optional TensorBoard;
- `run.run_training`: what `taming train` runs (the original `main.py`);
- `demo`: the embedded `taming demo`.
"""

from __future__ import annotations

import logging
import warnings


def _quiet_lightning() -> None:
    """One copy of each Lightning log line, without its advertising tips."""
    import lightning  # noqa: F401  (adds its own console handler on import)

    lightning_logger = logging.getLogger("lightning")
    if logging.getLogger().handlers:  # the application configured logging: use that
        lightning_logger.handlers = [
            h for h in lightning_logger.handlers if type(h) is not logging.StreamHandler
        ]

    class _NoTips(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            return "litlogger" not in str(record.msg) and "💡" not in str(record.msg)

    for name in ("lightning.pytorch.utilities.rank_zero", "lightning.fabric.utilities.rank_zero"):
        logging.getLogger(name).addFilter(_NoTips())
    # torch >= 2.10 deprecates an isinstance check Lightning still uses
    warnings.filterwarnings("ignore", message=r".*isinstance\(treespec, LeafSpec\).*")
    # training metrics are logged per process (as the original did); the epoch-level codebook
    # and skipped-file counts are reduced across processes by taming itself
    warnings.filterwarnings(
        "ignore", message=r"It is recommended to use `self.log\('((train|data)/|temperature')"
    )
    warnings.filterwarnings(
        "ignore", message=r"It is recommended to use `self.log\('\w+/(codebook_usage|perplexity)'"
    )
    # configs without a validation split are normal
    warnings.filterwarnings("ignore", message=r"You defined a `validation_step` but have no `val_")
    warnings.filterwarnings("ignore", message=r"The number of training batches \(\d+\) is smaller")


_quiet_lightning()
