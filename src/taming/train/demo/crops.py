"""Fixed crops of the photos bundled with scikit-image (`taming.data.demo.SkimagePhotos`)."""

from __future__ import annotations

import torch

__all__ = ["photo_crops"]


def photo_crops(split: str, size: int, n: int) -> torch.Tensor:
    """`n` crops of a split as a (n, 3, size, size) tensor in [-1, 1]."""
    from taming.data.demo import SkimagePhotos

    ds = SkimagePhotos(size=size, split=split, length=n)
    x = torch.stack([torch.from_numpy(ds[i]["image"]) for i in range(len(ds))])  # (N, H, W, C)
    return x.permute(0, 3, 1, 2).contiguous()  # (N, C, H, W)
