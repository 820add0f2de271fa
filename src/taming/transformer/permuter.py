"""Token orderings ("permuters") of the latent grid for the autoregressive transformer.

Esser et al. (CVPR 2021) sample the VQGAN code grid in raster order (`Identity`, the default);
the original code base also ships alternative orderings, reproduced here with the same
orderings and the same buffer names (`forward_shuffle_idx`, `backward_shuffle_idx`, int64
`(H*W,)`), so checkpoints holding them load strictly.

Every permuter maps a raster-ordered sequence `x (B, H*W, ...)` to its sampling order with
`x[:, forward_shuffle_idx]` and back with `reverse=True` (`x[:, backward_shuffle_idx]`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

__all__ = [
    "AbstractPermuter",
    "AlternateParsing",
    "Identity",
    "Random",
    "SpiralIn",
    "SpiralOut",
    "Subsample",
    "ZCurve",
    "mortonify",
]


class AbstractPermuter(nn.Module):
    """Base class: `forward(x, reverse=False)` reorders the sequence axis (dim 1)."""

    def forward(self, x: Tensor, reverse: bool = False) -> Tensor:
        raise NotImplementedError


class Identity(AbstractPermuter):
    """Raster order (no buffers)."""

    def forward(self, x: Tensor, reverse: bool = False) -> Tensor:
        return x


class _IndexPermuter(AbstractPermuter):
    """A fixed permutation `order` (sequence position -> raster position) and its inverse."""

    forward_shuffle_idx: Tensor
    backward_shuffle_idx: Tensor

    def __init__(self, order: np.ndarray | list[int], inverse: np.ndarray | None = None) -> None:
        super().__init__()
        idx = torch.as_tensor(np.asarray(order, dtype=np.int64))
        inv = torch.argsort(idx) if inverse is None else torch.as_tensor(inverse)
        self.register_buffer("forward_shuffle_idx", idx)
        self.register_buffer("backward_shuffle_idx", inv.to(torch.int64))

    def forward(self, x: Tensor, reverse: bool = False) -> Tensor:
        if reverse:
            return x[:, self.backward_shuffle_idx]
        return x[:, self.forward_shuffle_idx]


class Subsample(_IndexPermuter):
    """Multi-scale order: repeated 2x2 space-to-depth of the index grid down to 1x1.

    The first quarter of the sequence is the stride-2 sub-lattice of even rows and columns,
    ordered recursively the same way, then the (even, odd), (odd, even), (odd, odd) ones.
    Needs a square power-of-two grid.
    """

    def __init__(self, H: int, W: int) -> None:
        C = 1
        indices = np.arange(H * W).reshape(C, H, W)
        while min(H, W) > 1:
            indices = indices.reshape(C, H // 2, 2, W // 2, 2)  # (C, H/2, a, W/2, b)
            indices = indices.transpose(0, 2, 4, 1, 3)  # (C, a, b, H/2, W/2)
            indices = indices.reshape(C * 4, H // 2, W // 2)
            H, W, C = H // 2, W // 2, C * 4
        if H != 1 or W != 1:
            raise ValueError("Subsample needs a square power-of-two grid")
        super().__init__(indices.ravel())


def mortonify(i: int, j: int) -> int:
    """Morton (Z-order) code of grid cell `(i, j)`: bits of `j` at even, of `i` at odd bits."""
    z = 0
    for pos in range(32):
        z |= ((j >> pos) & 1) << (2 * pos) | ((i >> pos) & 1) << (2 * pos + 1)
    return z


class ZCurve(_IndexPermuter):
    """Z-order (Morton) curve; `backward_shuffle_idx` holds the Morton codes themselves.

    As in the original, this is a valid permutation pair only for square power-of-two grids.
    """

    def __init__(self, H: int, W: int) -> None:
        codes = np.array([mortonify(i, j) for i in range(H) for j in range(W)], dtype=np.int64)
        if sorted(codes.tolist()) != list(range(H * W)):
            raise ValueError("ZCurve needs a square power-of-two grid")
        super().__init__(np.argsort(codes, kind="stable"), codes)


def _spiral_out(size: int) -> list[int]:
    """Raster indices of a square spiral from `(size/2, size/2 - 1)` outwards."""
    grid = np.arange(size * size).reshape(size, size)
    i, j = size // 2, size // 2 - 1
    order = [grid[i, j]]
    run = 0
    for lap in range(1, size // 2 + 1):
        run += 1
        for _ in range(run):  # up
            i -= 1
            order.append(grid[i, j])
        for _ in range(run):  # right
            j += 1
            order.append(grid[i, j])
        run += 1
        if lap < size // 2:
            for _ in range(run):  # down
                i += 1
                order.append(grid[i, j])
            for _ in range(run):  # left
                j -= 1
                order.append(grid[i, j])
        else:  # last lap: down the right edge to the bottom-right corner
            for _ in range(run - 1):
                i += 1
                order.append(grid[i, j])
    return [int(k) for k in order]


class SpiralOut(_IndexPermuter):
    """Spiral starting at `(H/2, W/2 - 1)` and moving outwards (square grids only)."""

    def __init__(self, H: int, W: int) -> None:
        if H != W:
            raise ValueError("SpiralOut needs a square grid")
        super().__init__(_spiral_out(W))


class SpiralIn(_IndexPermuter):
    """`SpiralOut` reversed: from the bottom-right corner inwards (square grids only)."""

    def __init__(self, H: int, W: int) -> None:
        if H != W:
            raise ValueError("SpiralIn needs a square grid")
        super().__init__(_spiral_out(W)[::-1])


class Random(_IndexPermuter):
    """A fixed random order: `np.random.RandomState(1).permutation(H*W)`."""

    def __init__(self, H: int, W: int) -> None:
        super().__init__(np.random.RandomState(1).permutation(H * W))


class AlternateParsing(_IndexPermuter):
    """Boustrophedon: even rows left to right, odd rows right to left."""

    def __init__(self, H: int, W: int) -> None:
        indices = np.arange(W * H).reshape(H, W)
        indices[1::2] = indices[1::2, ::-1].copy()
        super().__init__(indices.ravel())
