"""`taming train` shorthands for your own photos: `--data`, `--val-data`, `--first-stage`.

    taming train -b configs/vqgan/folder_small.yaml --data photos/
    taming train -b configs/vqgan/folder_small.yaml --data train/ --val-data val/
    taming train -b configs/transformer/folder_small.yaml --first-stage logs/<run> --data photos/

Each flag becomes config overrides (`overrides_from_flags`), placed before the command line's
own `key=value` overrides, so those still win:

- `--data DIR`: the folder (or `.txt` list) of `data.params.train` and `data.params.validation`
  with a seeded train/validation split of it (`split: train` / `split: validation`, see
  `taming.data.folder.split_paths`);
- `--val-data DIR`: validation reads DIR and training all of `--data` (no split);
- `--first-stage RUN`: `model.params.first_stage_config.run=RUN` (architecture and weights from
  the run, see `taming.runref`; a config of the original form, with `ckpt_path`, gets the run's
  `last.ckpt` there and its stated architecture is checked against the run's) and the data
  size of the splits set to the run's image size.

`--data` needs a config whose data splits are `taming.data.folder.ImageFolderDataset` (the
`configs/*/folder_*.yaml` presets); another config is a one-line error naming the key.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from taming.config import ConfigError, load_config, to_container

__all__ = ["add_arguments", "overrides_from_flags"]

_FOLDER = "taming.data.folder.ImageFolderDataset"
_SPLITS = ("train", "validation")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("your own photos (configs/*/folder_*.yaml presets)")
    g.add_argument(
        "--data",
        metavar="DIR",
        default=None,
        help="image folder (or .txt list) for training; a seeded 90/10 split also gives the "
        "validation images unless --val-data is set",
    )
    g.add_argument("--val-data", metavar="DIR", default=None, help="validation image folder")
    g.add_argument(
        "--first-stage",
        metavar="RUN",
        default=None,
        help="the tokenizer run a transformer config trains over (its architecture, weights "
        "and image size)",
    )


def _value(v: Any) -> str:
    return json.dumps(v)  # a YAML scalar: paths stay strings ("123", "null", spaces, quotes)


def _data_splits(base: list[str], flag: str | None) -> dict[str, dict]:
    """The data splits of the base configs (empty: no base), checked to be image folders when
    `flag` (the flag that needs them to be) is given."""
    if not base:
        return {}
    cfg = to_container(load_config(base))
    data = ((cfg.get("data") or {}).get("params")) or {}
    splits = {s: data[s] for s in _SPLITS if isinstance(data.get(s), dict)}
    from taming.compat.targets import LEGACY_TARGETS

    for name, split in splits.items() if flag else ():
        target = LEGACY_TARGETS.get(split.get("target"), split.get("target"))
        if target != _FOLDER:
            raise ConfigError(
                f"{flag}: data.params.{name} of {base[-1]} reads {split.get('target')}, not an "
                "image folder; use a folder preset (configs/vqgan/folder_small.yaml, "
                "configs/transformer/folder_small.yaml, ...) or set its keys directly"
            )
    return splits


def overrides_from_flags(
    base: list[str],
    data: str | None = None,
    val_data: str | None = None,
    first_stage: str | None = None,
) -> list[str]:
    """Config overrides (`key=value`) for `--data`, `--val-data` and `--first-stage`.

    Args:
        base: the `-b` config files (empty on resume: the flags are not checked against them).

    Raises:
        ConfigError: `--val-data` without `--data`, a config whose data is not a folder, a
            `--first-stage` that is not a run folder or a config that is not a transformer's.
    """
    if val_data is not None and data is None:
        raise ConfigError("--val-data: needs --data (the training images) too")
    out: list[str] = []
    if data is None and first_stage is None:
        return out
    splits = _data_splits(base, "--data" if data is not None else None)
    present = list(splits) if base else list(_SPLITS)
    if data is not None:
        train = "data.params.train.params"
        out += [f"{train}.root_or_list={_value(data)}"]
        out += [f"{train}.split={'null' if val_data or 'validation' not in present else 'train'}"]
        if val_data is not None and "validation" not in present:
            out += [f"data.params.validation.target={_FOLDER}"]
            size = ((splits.get("train") or {}).get("params") or {}).get("size")
            if size is not None:
                out += [f"data.params.validation.params.size={int(size)}"]
            present.append("validation")
        if "validation" in present:
            val = "data.params.validation.params"
            out += [f"{val}.root_or_list={_value(val_data or data)}"]
            out += [f"{val}.split={'null' if val_data else 'validation'}"]
    if first_stage is not None:
        from taming.runref import read_run, run_image_size

        stage: dict = {}
        if base:
            model = to_container(load_config(base)).get("model") or {}
            if "first_stage_config" not in (model.get("params") or {}):
                raise ConfigError(
                    f"--first-stage: {base[-1]} is not a transformer config (no "
                    "model.params.first_stage_config); see configs/transformer/folder_small.yaml"
                )
            stage = model["params"]["first_stage_config"] or {}
        run = read_run(first_stage, where="--first-stage")
        out += [f"model.params.first_stage_config.run={_value(first_stage)}"]
        if (stage.get("params") or {}).get("ckpt_path") is not None:  # original form
            if run.ckpt is None:
                raise ConfigError(f"--first-stage: {run.folder} has no checkpoints/last.ckpt yet")
            out += [f"model.params.first_stage_config.params.ckpt_path={_value(str(run.ckpt))}"]
        size = run_image_size(run)
        sized = [s for s in present if not splits or "size" in (splits[s].get("params") or {})]
        if size is not None:
            out += [f"data.params.{s}.params.size={int(size)}" for s in sized]
    return out
