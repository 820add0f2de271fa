"""`taming sample --from-data SPLIT`: conditions taken from the run config's dataset.

As the original's `scripts/make_samples.py` (SPEC §5.5.3) and `make_scene_samples.py`: for the
first `n` examples of a split of the run's `data` section (segmentations, depth maps, class
labels, layouts), the model's condition is read from the example (`cond_stage_key`), one
sample is drawn at the example's size (a sliding window when it is larger than the training
window), and condition / ground truth / sample are written side by side:
`{i:06}.png` (sample), `inputs/{i:06}.png`, `conditions/{i:06}.png` and a `grid.png` whose rows
read condition | ground truth | sample.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import torch
from torch import Tensor

from taming.images import make_grid, save
from taming.pipeline.errors import SampleError
from taming.pipeline.options import SampleResult
from taming.pipeline.sample import iter_samples

logger = logging.getLogger(__name__)

__all__ = ["dataset_of_run", "sample_from_data"]


def dataset_of_run(run: Any, split: str) -> Any:
    """The dataset of `split` in the run config's `data.params` (e.g. `validation`)."""
    from taming.config import instantiate_from_config, load_config
    from taming.loading import resolve_model_files

    files = resolve_model_files(run.opts.resume, run.opts.ckpt)
    cfg = load_config([*files.configs, *run.opts.base], list(run.opts.overrides))
    data = cfg.get("data")
    splits = (data or {}).get("params") or {}
    if split not in splits:
        known = sorted(k for k, v in splits.items() if hasattr(v, "get") and "target" in v)
        raise SampleError(
            f"--from-data {split}: the run config has no data.params.{split} "
            f"(it has: {', '.join(known) or 'no data section'})"
        )
    return instantiate_from_config(splits[split], where=f"data.params.{split}")


def _batch(item: dict[str, Any]) -> dict[str, Tensor]:
    """One example as a batch of one (numbers and arrays only)."""
    out = {}
    for k, v in item.items():
        if isinstance(v, (int, float, np.integer, np.floating, np.ndarray, Tensor)):
            out[k] = torch.as_tensor(np.asarray(v))[None]
    return out


def _shown(model: Any, cond: Tensor) -> Tensor | None:
    """The condition as a `(1, 3, H, W)` image in [-1, 1], or None (class ids, tokens)."""
    if model.condition_kind != "spatial" or cond.ndim != 4:
        return None
    img = model.condition_to_rgb(cond)
    if img is None:
        return None
    img = img.float().cpu().clamp(-1, 1)
    return img.expand(-1, 3, -1, -1) if img.shape[1] == 1 else img[:, :3]


def _example(run: Any, dataset: Any, i: int) -> tuple[Any, Tensor, tuple[int, int] | None]:
    """`(condition, ground truth (1, 3, H, W), sample size)` of example `i`."""
    model, key = run.model, run.model.cond_stage_key
    batch = _batch(dataset[i])
    if key not in batch:
        raise SampleError(
            f"--from-data {run.opts.from_data}: examples have no '{key}' (the model's "
            f"cond_stage_key); they have {sorted(batch)}"
        )
    cond = model.get_input(key, batch)
    x = model.get_input(model.first_stage_key, batch).float()  # (1, 3, H, W)
    size = run.size
    if model.condition_kind == "none":
        cond = None
    elif model.condition_kind == "class":
        cond = int(cond.reshape(-1)[0])
    elif size is None and cond.ndim == 4:
        f = run.f
        size = (cond.shape[-2] // f * f, cond.shape[-1] // f * f)
        cond = cond[..., : size[0], : size[1]]
    return cond, x, size


def sample_from_data(run: Any) -> SampleResult:
    """Sample once per example of the split; write condition / input / sample and a grid."""
    from taming.pipeline.run import plan_of  # the same plan and cost checks as other modes

    opts, model = run.opts, run.model
    dataset = dataset_of_run(run, opts.from_data)
    n = min(opts.num_samples or 4, len(dataset))
    if n < 1:
        raise SampleError(f"--from-data {opts.from_data}: the dataset is empty")
    first = _example(run, dataset, 0)
    run.size = first[2]
    plan, n_ctx = plan_of(run, first[0], 1)
    bar = run.announce(plan, n, plan.grid[0] * plan.grid[1], n_ctx)
    result = SampleResult(run.folder(f"from_{opts.from_data}"))
    summary = run.summary(n, plan, *run.cost)
    (result.folder / "inputs").mkdir()
    (result.folder / "conditions").mkdir()
    gen = run.generator(None)
    rows: list[Tensor] = []
    with bar:
        for i in range(n):
            cond, x, size = first if i == 0 else _example(run, dataset, i)
            ((sample, _),) = iter_samples(
                model, 1, cond, run.config, size=size, generator=gen,
                callback=lambda step, probs: bar.update(probs.shape[0]),
            )  # fmt: skip
            name = f"{i:06}.png"
            save(sample, result.folder / name)
            result.files.append(result.folder / name)
            truth = x.cpu().clamp(-1, 1)
            save(truth, result.folder / "inputs" / name)
            shown = _shown(model, cond) if torch.is_tensor(cond) else None
            if shown is not None:
                save(shown, result.folder / "conditions" / name)
            parts = [p for p in (shown, truth, sample) if p is not None]
            if all(p.shape[-2:] == sample.shape[-2:] for p in parts):
                rows.append(torch.cat(parts))
    if opts.grid and rows and all(r.shape == rows[0].shape for r in rows):
        path = result.folder / "grid.png"
        make_grid(torch.cat(rows), nrow=rows[0].shape[0]).save(path)
        result.grids.append(path)
    summary["dataset"] = type(dataset).__name__
    return run.done(result, summary)
