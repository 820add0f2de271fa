"""Random FID Inception-v3 weights in the real file layout, and small image folders (tests).

No pretrained weights exist on the test machines; these weights keep activations in a sane
range over the 94 layers (He-scaled convolutions, BatchNorm near identity) so features,
statistics and scores are non-degenerate.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from taming.metrics.inception import FIDInceptionV3

TF_FILE = "weights-inception-2015-12-05-6726825d.pth"
PT_FILE = "pt_inception-2015-12-05-6726825d.pth"


def random_inception_state_dict(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sd = {}
    for k, v in FIDInceptionV3(input_size=75).state_dict().items():
        if k.endswith("conv.weight"):
            sd[k] = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif k.endswith(("bn.weight", "running_var")):
            sd[k] = 0.5 + torch.rand(v.shape, generator=g)
        elif k.endswith(("bn.bias", "running_mean")):
            sd[k] = 0.1 * torch.randn(v.shape, generator=g)
        elif k == "fc.weight":
            sd[k] = torch.randn(v.shape, generator=g) * 0.01
        elif k == "fc.bias":
            sd[k] = torch.randn(v.shape, generator=g)
        else:  # num_batches_tracked
            sd[k] = v
    return sd


def write_weights(path: Path, seed: int = 0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(random_inception_state_dict(seed), path)
    return path


def write_images(folder: Path, n: int, size=(48, 40), seed: int = 0, prefix: str = "") -> Path:
    """`n` PNGs of smooth random blobs (W x H = size), named `{prefix}{i:03}.png`."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        small = rng.integers(0, 256, (4, 4, 3), dtype=np.uint8)
        img = Image.fromarray(small).resize(size, Image.Resampling.BILINEAR)
        img.save(folder / f"{prefix}{i:03}.png")
    return folder
