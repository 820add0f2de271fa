"""Record the golden outputs of image-level sampling: `python tests/make_goldens.py`.

Seeded tokens and decoded images of the tiny models of `tiny_net2net` for plain (unconditional),
class-conditional, classifier-free-guided, sliding-window (2x-wide grids: SOS prefix, and a
segmentation condition whose code grid is cropped with the window) and completion sampling
(at the window's size and 2x wide). `test_golden_sampling.py` compares the current code with
the file this writes, `tests/fixtures/golden/sampling.npz`: recorded once, before the sampling
refactor of issue 8, so a refactor that changes any draw fails the test.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from taming.pipeline import complete_image, sample_images  # noqa: E402
from tiny_net2net import N_LABELS, build_model  # noqa: E402

GOLDEN = Path(__file__).resolve().parent / "fixtures" / "golden" / "sampling.npz"


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _image(size: tuple[int, int], seed: int) -> torch.Tensor:
    """A smooth random image `(1, 3, H, W)` in [-1, 1] (numpy's seeded generator)."""
    rng = np.random.default_rng(seed)
    low = torch.from_numpy(rng.uniform(-1, 1, (1, 3, size[0] // 4, size[1] // 4))).float()
    return torch.nn.functional.interpolate(low, size=size, mode="bilinear", align_corners=False)


def _segmentation(size: tuple[int, int], seed: int) -> torch.Tensor:
    """A random one-hot label map `(1, N_LABELS, H, W)` in 4x4-pixel blocks."""
    rng = np.random.default_rng(seed)
    labels = torch.from_numpy(rng.integers(0, N_LABELS, (size[0] // 4, size[1] // 4)))
    labels = labels.repeat_interleave(4, 0).repeat_interleave(4, 1)  # (H, W)
    return torch.nn.functional.one_hot(labels, N_LABELS).permute(2, 0, 1)[None].float()


def compute_goldens() -> dict[str, np.ndarray]:
    """`{case/tokens, case/images}` arrays of every golden case, with the current code."""
    models = {kind: build_model(kind) for kind in ("uncond", "class", "seg")}
    out: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    out["plain"] = sample_images(
        models["uncond"], 3, top_k=16, batch_size=2, generator=_gen(11), return_tokens=True
    )
    out["class"] = sample_images(
        models["class"], 3, cond=[0, 1, 3], top_k=16, top_p=0.9, generator=_gen(12),
        return_tokens=True,
    )  # fmt: skip
    out["cfg"] = sample_images(
        models["class"], 2, cond=2, cfg_scale=3.0, generator=_gen(13), return_tokens=True
    )
    out["sliding"] = sample_images(
        models["uncond"], 2, size=(16, 32), top_k=16, generator=_gen(14), return_tokens=True
    )
    out["sliding_class_cfg"] = sample_images(
        models["class"], 1, cond=1, size=(16, 32), cfg_scale=2.0, generator=_gen(15),
        return_tokens=True,
    )  # fmt: skip
    out["sliding_seg"] = sample_images(
        models["seg"], 2, cond=_segmentation((16, 32), 3), generator=_gen(16), return_tokens=True
    )
    for name, size, seed in (("completion", (16, 16), 17), ("completion_wide", (16, 32), 18)):
        images, tokens, _ = complete_image(
            models["uncond"], _image(size, seed), 2, keep_top=0.5, generator=_gen(seed)
        )
        out[name] = images, tokens
    arrays = {}
    for name, (images, tokens) in out.items():
        arrays[f"{name}/tokens"] = tokens.numpy().astype(np.int64)
        arrays[f"{name}/images"] = images.numpy().astype(np.float32)
    return arrays


def main() -> None:
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    arrays = compute_goldens()
    np.savez_compressed(GOLDEN, **arrays)
    print(f"wrote {GOLDEN} ({len(arrays) // 2} cases)")


if __name__ == "__main__":
    main()
