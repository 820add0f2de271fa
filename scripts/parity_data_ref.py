"""Reference side of `scripts/parity_data.py`: run the ORIGINAL data classes, dump their items.

Runs inside the throwaway reference venv (albumentations 0.4.3, torchvision), with the original
repository's `taming/` package on `sys.path` (prepared by `parity_data.py --setup`). It is not
part of the package and never imported by it.

    python parity_data_ref.py ORIG_DIR TREE CASES.json OUT_DIR

For every case (`target`, `params`, item indices, seed) it instantiates the original class with
the CWD at TREE (the original's `data/...` paths are CWD-relative) and `XDG_CACHE_HOME` at
TREE/xdg, seeds `random`, `numpy.random` and `torch` before every item, and saves the items'
arrays (`OUT_DIR/<case>.npz`) and other values (`OUT_DIR/<case>.json`). Any download raises.
"""

from __future__ import annotations

import importlib
import json
import os
import random
import sys
import types

import numpy as np


def _install_stubs() -> None:
    # albumentations 0.4.3 imports imgaug at import time; nothing used here needs it
    imgaug = types.ModuleType("imgaug")
    imgaug.augmenters = types.ModuleType("imgaug.augmenters")
    sys.modules["imgaug"] = imgaug
    sys.modules["imgaug.augmenters"] = imgaug.augmenters

    def _no_network(*args, **kwargs):
        raise RuntimeError("download attempted in the parity run")

    requests = types.ModuleType("requests")
    requests.get = _no_network
    sys.modules["requests"] = requests
    at = types.ModuleType("academictorrents")
    at.get = _no_network
    sys.modules["academictorrents"] = at
    # torch._six was removed in torch 2
    import torch

    six = types.ModuleType("torch._six")
    six.string_classes = (str, bytes)
    sys.modules["torch._six"] = six
    torch._six = six
    # np.bool was removed in numpy 1.24 (set after albumentations/scikit-image are imported:
    # scikit-image takes its presence for an old numpy); yaml.load needs a Loader in PyYAML 6
    import albumentations  # noqa: F401
    import skimage.color  # noqa: F401
    import skimage.feature  # noqa: F401

    np.bool = bool
    import yaml

    _load = yaml.load
    yaml.load = lambda stream, Loader=yaml.FullLoader: _load(stream, Loader=Loader)
    # torchvision >= 0.17 dropped the private _get_image_size used by image_transforms.py
    import torchvision.transforms.functional as F

    if not hasattr(F, "_get_image_size"):
        F._get_image_size = F.get_image_size


def _get(obj, target: str):
    module, name = target.rsplit(".", 1)
    return getattr(importlib.import_module(module), name)


def _to_numpy(v):
    import torch

    if isinstance(v, torch.Tensor):
        return v.numpy()
    return v


def flatten_example(ex, i: int, arrays: dict, values: dict) -> None:
    """Split one item into numeric arrays and JSON values (shared with parity_data.py)."""
    if isinstance(ex, tuple):
        ex = ex[0]
    for k, v in ex.items():
        v = _to_numpy(v)
        if isinstance(v, np.ndarray) and v.dtype.kind in "fiub":
            arrays[f"{i}/{k}"] = v
        elif isinstance(v, np.generic):
            values[f"{i}/{k}"] = [str(v.dtype), v.item()]
        elif k == "annotations":
            values[f"{i}/{k}"] = [[float(x) for x in a.bbox] + [a.category_no] for a in v]
        elif isinstance(v, (int, float, bool)) or v is None:
            values[f"{i}/{k}"] = [type(v).__name__, v]
        elif isinstance(v, (tuple, list)):
            values[f"{i}/{k}"] = ["seq", [str(x) if isinstance(x, str) else x for x in v]]
        else:
            values[f"{i}/{k}"] = ["str", str(v)]


def main() -> None:
    orig, tree, cases_file, out_dir = sys.argv[1:5]
    sys.path.insert(0, orig)
    _install_stubs()
    import taming.util

    taming.util.download = lambda *a, **k: (_ for _ in ()).throw(RuntimeError("download"))
    import torch

    os.environ["XDG_CACHE_HOME"] = os.path.join(tree, "xdg")
    os.chdir(tree)
    with open(cases_file) as f:
        cases = json.load(f)
    os.makedirs(out_dir, exist_ok=True)
    for case in cases:
        name = case["name"]
        arrays, values = {}, {}
        try:
            ds = _get(None, case["target"])(**case["params"])
            values["len"] = len(ds)
            for i in [i for i in case["indices"] if i < len(ds)]:
                seed = case.get("seed", 0) + i
                random.seed(seed)
                np.random.seed(seed)
                torch.manual_seed(seed)
                flatten_example(ds[i], i, arrays, values)
        except Exception as e:  # recorded, reported as a failure by the caller
            with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
                json.dump({"error": f"{type(e).__name__}: {e}"}, f)
            continue
        np.savez_compressed(os.path.join(out_dir, f"{name}.npz"), **arrays)
        with open(os.path.join(out_dir, f"{name}.json"), "w") as f:
            json.dump(values, f)
        print(f"reference {name}: {len(ds)} items, dumped {len(case['indices'])}", flush=True)


if __name__ == "__main__":
    main()
