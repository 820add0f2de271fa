"""`DataModuleFromConfig`: the original `main.DataModuleFromConfig` as a LightningDataModule.

Configs name it `main.DataModuleFromConfig` (or `cutlit.DataModuleFromConfig`); both resolve
here (`taming.compat.targets`). Parameters as in the original: `batch_size`, `train`,
`validation`, `test` (each a `{target, params}` dataset config), `wrap`, `num_workers`.

Differences, all compatible:

- `num_workers` defaults to `2 * batch_size` as in the original, capped at the CPUs this
  process may use (divided among the processes of a multi-device run on one node);
- datasets are built once, in `setup()`; a dataset that cannot be built (missing folder or
  list file, no images) raises `ConfigError` naming the config key;
- `skipped_files()` reports the unreadable files the datasets skipped so far.

Loaders: `custom_collate`; training data shuffled, the others not; no `drop_last`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import lightning.pytorch as pl
from torch.utils.data import ConcatDataset, DataLoader, Dataset, Subset

from taming.config import ConfigError, instantiate_from_config, to_container
from taming.data.utils import custom_collate

logger = logging.getLogger(__name__)

__all__ = ["DataModuleFromConfig", "WrappedDataset", "available_cpus", "unwrap_datasets"]

SPLITS = ("train", "validation", "test")


def available_cpus() -> int:
    """CPUs this process may run on."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def _local_processes() -> int:
    for key in ("LOCAL_WORLD_SIZE", "SLURM_NTASKS_PER_NODE"):
        value = os.environ.get(key, "")
        if value.isdigit() and int(value) > 0:
            return int(value)
    return 1


class WrappedDataset(Dataset):
    """Wraps any object with `__len__` and `__getitem__` (e.g. a list) as a Dataset."""

    def __init__(self, dataset: Any) -> None:
        self.data = dataset

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, idx: int) -> Any:
        return self.data[idx]


def unwrap_datasets(dataset: Any) -> list[Any]:
    """The leaf datasets inside wrappers (`WrappedDataset`, `Subset`, `ConcatDataset`)."""
    if isinstance(dataset, WrappedDataset):
        return unwrap_datasets(dataset.data)
    if isinstance(dataset, Subset):
        return unwrap_datasets(dataset.dataset)
    if isinstance(dataset, ConcatDataset):
        return [leaf for d in dataset.datasets for leaf in unwrap_datasets(d)]
    return [dataset]


class DataModuleFromConfig(pl.LightningDataModule):
    """Train/validation/test loaders from dataset configs.

    Args:
        batch_size: examples per batch (per process).
        train: `{target, params}` of the training dataset.
        validation: `{target, params}` of the validation dataset.
        test: `{target, params}` of the test dataset.
        wrap: wrap each dataset in `WrappedDataset`.
        num_workers: loader worker processes (default: `2 * batch_size`, capped at the CPUs
            available per process); 0 loads in the main process.
        pin_memory: pin batches in page-locked memory (default: when CUDA is available).
        persistent_workers: keep workers alive between epochs (default: when there are any).
    """

    def __init__(
        self,
        batch_size: int,
        train: dict | None = None,
        validation: dict | None = None,
        test: dict | None = None,
        wrap: bool = False,
        num_workers: int | None = None,
        pin_memory: bool | None = None,
        persistent_workers: bool | None = None,
    ) -> None:
        super().__init__()
        if batch_size < 1:
            raise ConfigError(f"data.params.batch_size: must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.dataset_configs: dict[str, Any] = {}
        for split, cfg in zip(SPLITS, (train, validation, test)):
            if cfg is not None:
                self.dataset_configs[split] = to_container(cfg)
        if num_workers is not None and num_workers < 0:
            raise ConfigError(f"data.params.num_workers: must be >= 0, got {num_workers}")
        self._num_workers = num_workers
        self.pin_memory = pin_memory
        self.persistent_workers = persistent_workers
        self.wrap = wrap
        self.datasets: dict[str, Any] = {}
        if "train" in self.dataset_configs:
            self.train_dataloader = self._train_dataloader
        if "validation" in self.dataset_configs:
            self.val_dataloader = self._val_dataloader
        if "test" in self.dataset_configs:
            self.test_dataloader = self._test_dataloader

    # LightningDataModule hooks -----------------------------------------------------------

    def prepare_data(self) -> None:
        """Nothing to download: datasets are built (and checked) in `setup`."""

    def setup(self, stage: str | None = None) -> None:
        """Build every configured dataset once (later calls are no-ops)."""
        for split, cfg in self.dataset_configs.items():
            if split in self.datasets:
                continue
            where = f"data.params.{split}"
            try:
                dataset = instantiate_from_config(cfg, where=where)
            except ConfigError:
                raise
            except (OSError, ValueError, ImportError, NotImplementedError) as e:
                raise ConfigError(f"{where}: {str(e).splitlines()[0]}") from e
            if self.wrap:
                dataset = WrappedDataset(dataset)
            self.datasets[split] = dataset
            logger.info("data: %s = %s, %d examples", split, type(dataset).__name__, len(dataset))

    @property
    def num_workers(self) -> int:
        """Loader workers: as configured, else `2 * batch_size` capped at this process's CPUs."""
        if self._num_workers is not None:
            return int(self._num_workers)
        processes = _local_processes()
        trainer = getattr(self, "trainer", None)
        if trainer is not None:  # processes of this run on this node
            processes = max(processes, int(getattr(trainer, "num_devices", 1) or 1))
        return min(2 * self.batch_size, max(1, available_cpus() // processes))

    def has_split(self, split: str) -> bool:
        return split in self.dataset_configs

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        self.setup()
        import torch

        workers = self.num_workers
        pin = torch.cuda.is_available() if self.pin_memory is None else self.pin_memory
        persistent = workers > 0 if self.persistent_workers is None else self.persistent_workers
        return DataLoader(
            self.datasets[split],
            batch_size=self.batch_size,
            shuffle=shuffle,
            num_workers=workers,
            collate_fn=custom_collate,
            pin_memory=pin,
            persistent_workers=persistent and workers > 0,
        )

    # Loader methods exist only for configured splits (set in __init__, as the original did),
    # so Lightning runs no validation or test loop for a split that is not there.

    def _train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def _val_dataloader(self) -> DataLoader:
        return self._loader("validation", shuffle=False)

    def _test_dataloader(self) -> DataLoader:
        return self._loader("test", shuffle=False)

    # reporting ---------------------------------------------------------------------------

    def skipped_files(self) -> Mapping[str, tuple[int, list[str]]]:
        """Per built split: `(number of unreadable files skipped, their paths)`."""
        report: dict[str, tuple[int, list[str]]] = {}
        for split, dataset in self.datasets.items():
            count, paths = 0, []
            for leaf in unwrap_datasets(dataset):
                count += int(getattr(leaf, "num_skipped", 0) or 0)
                paths += list(getattr(leaf, "skipped_files", []) or [])
            report[split] = (count, paths)
        return report
