"""`taming data`: check dataset folders, write train/validation lists, prepare ImageNet.

    taming data check ROOT --dataset ade20k [--grid grid.png] [-n 16] [--limit N]
    taming data lists FOLDER [--val-fraction 0.1] [--seed 0] [--out DIR]
    taming data prepare imagenet [--split train validation] [--root DIR]

`check` opens ROOT in the layout of `--dataset` (`taming.data.inspect`), loads every item (or
`--limit`), prints the counts, the unreadable files and, for label maps, the label range, and
writes a grid of the first `-n` items (images; label maps coloured; depth in grey) to `--grid`
(default `<dataset>_check.png`). `lists` writes seeded `train.txt` / `validation.txt` (absolute
paths, for `CustomTrain` / `CustomTest`) and never overwrites existing lists unless `--force`.
`prepare imagenet` extracts `ILSVRC2012_img_{train,val}.tar` in the original cache layout
(resumable, see `taming.data.imagenet_prepare`).
"""

from __future__ import annotations

import argparse
import functools
import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    from taming.data.inspect import DATASETS

    p = sub.add_parser("data", help="check datasets, write split lists, prepare ImageNet")
    actions = p.add_subparsers(dest="data_command", metavar="ACTION", required=True)

    c = actions.add_parser("check", help="counts, unreadable files, label range, a sample grid")
    c.add_argument("root", help="dataset folder")
    c.add_argument("--dataset", required=True, choices=DATASETS, help="layout of ROOT")
    c.add_argument("--split", default="validation", choices=("train", "validation"))
    c.add_argument("--size", type=int, default=256, help="crop size where the set resizes")
    c.add_argument("--limit", type=int, help="check only the first N items")
    c.add_argument("-n", "--n-grid", type=int, default=16, help="items in the grid")
    c.add_argument("--grid", help="grid PNG (default: <dataset>_check.png)")
    c.set_defaults(func=run_check)

    li = actions.add_parser("lists", help="seeded train/validation lists of a folder of images")
    li.add_argument("folder")
    li.add_argument("--val-fraction", type=float, default=0.1)
    li.add_argument("--seed", type=int, default=0)
    li.add_argument("--out", help="folder for train.txt / validation.txt (default: FOLDER)")
    li.add_argument("--force", action="store_true", help="overwrite existing lists")
    li.set_defaults(func=run_lists)

    pr = actions.add_parser("prepare", help="extract ImageNet tars into the original layout")
    pr.add_argument("what", choices=("imagenet",))
    pr.add_argument("--split", nargs="+", default=["train", "validation"])
    pr.add_argument("--root", help="split folder (default: the original cache folder)")
    pr.set_defaults(func=run_prepare)


def _user_errors(func):
    """Bad input (a wrong layout, existing lists, ...) as one line: `ConfigError`."""

    @functools.wraps(func)
    def wrapper(args: argparse.Namespace) -> int:
        from taming.config import ConfigError

        try:
            return func(args)
        except (ValueError, FileExistsError, NotADirectoryError) as e:
            if isinstance(e, ConfigError):
                raise
            raise ConfigError(str(e)) from e

    return wrapper


_PALETTE = np.random.default_rng(0).integers(0, 256, (256, 3)).astype(np.float32)


def _panel(value, size: int) -> torch.Tensor | None:
    """(3, size, size) in [-1, 1] for an image / one-hot map / depth, else None."""
    import torch

    arr = np.asarray(value.numpy() if isinstance(value, torch.Tensor) else value)
    if arr.dtype.kind not in "fiub" or arr.ndim not in (2, 3):
        return None
    if arr.ndim == 3 and arr.shape[2] == 3:
        x = arr.astype(np.float32)
    elif arr.ndim == 3 and arr.shape[2] > 3:  # one-hot labels -> palette colours
        x = _PALETTE[arr.argmax(-1) % 256] / 127.5 - 1.0
    elif arr.ndim == 2 or arr.shape[2] == 1:  # depth / coordinates
        g = arr.reshape(arr.shape[0], arr.shape[1]).astype(np.float32)
        x = np.repeat(g[:, :, None], 3, axis=2)
    else:
        return None
    t = torch.from_numpy(np.ascontiguousarray(x)).permute(2, 0, 1)  # (3, H, W)
    return torch.nn.functional.interpolate(t[None], size=(size, size), mode="nearest")[0]


def _grid(samples: list[dict], path: Path, size: int = 128) -> int:
    import torch

    from taming.images import make_grid

    panels = []
    for ex in samples:
        for key in ("image", "segmentation", "depth", "lr"):
            if key in ex:
                p = _panel(ex[key], size)
                if p is not None:
                    panels.append(p)
    if not panels:
        return 0
    per_item = max(1, len(panels) // max(1, len(samples)))
    path.parent.mkdir(parents=True, exist_ok=True)
    make_grid(torch.stack(panels), nrow=per_item * min(4, len(samples))).save(path)
    return len(samples)


@_user_errors
def run_check(args: argparse.Namespace) -> int:
    from taming.data.inspect import check, open_dataset

    ds = open_dataset(args.root, args.dataset, split=args.split, size=args.size)
    report = check(ds, limit=args.limit, keep=args.n_grid)
    print(f"dataset {args.dataset} ({type(ds).__name__}) at {args.root}: {report.length} items")
    print(
        f"checked {report.checked}: {report.readable} readable, {len(report.unreadable)} "
        f"unreadable, {len(report.label_errors)} with labels out of range"
    )
    for i, why in (report.unreadable + report.label_errors)[:20]:
        print(f"  item {i}: {why}")
    if report.labels:
        lo, hi = min(report.labels), max(report.labels)
        print(
            f"labels: {lo}..{hi} (n_labels {report.n_labels}), {len(report.labels)} distinct "
            "classes present"
        )
    grid = Path(args.grid or f"{args.dataset}_check.png")
    n = _grid(report.samples, grid)
    if n:
        print(f"grid: {grid} ({n} items)")
    return 1 if report.unreadable or report.label_errors else 0


@_user_errors
def run_lists(args: argparse.Namespace) -> int:
    from taming.data.inspect import make_lists

    train, val = make_lists(args.folder, args.val_fraction, args.seed)
    out = Path(args.out or args.folder)
    out.mkdir(parents=True, exist_ok=True)
    targets = {out / "train.txt": train, out / "validation.txt": val}
    existing = [str(p) for p in targets if p.exists()]
    if existing and not args.force:
        raise FileExistsError(f"{existing[0]} exists (use --force to overwrite)")
    for path, paths in targets.items():
        tmp = path.with_suffix(".txt.tmp")
        tmp.write_text("".join(f"{Path(p).resolve()}\n" for p in paths))
        tmp.replace(path)
        print(f"{path}: {len(paths)} images")
    return 0


@_user_errors
def run_prepare(args: argparse.Namespace) -> int:
    from taming.data.imagenet_prepare import SPLITS, prepare

    for split in args.split:
        if split not in SPLITS:
            raise ValueError(f"unknown split '{split}' (train, validation)")
        root = prepare(split, args.root)
        n = sum(1 for _ in open(Path(root) / "filelist.txt", encoding="utf-8"))
        print(f"ImageNet {split}: {root} ready ({n} images)")
    return 0
