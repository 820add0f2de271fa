"""How fast the codec's 3x3 convolutions run here, and whether Winograd would make them faster.

At the codec's sizes (batch 4, 64 or 128 channels, 8x8 to 128x128) the 3x3 convolutions are
~90% of encoding and decoding (`profile_codec.py`), so the codec's speed-up over the original
is bounded by how much faster our convolutions are than its. This times, per shape, the stock
convolution in NCHW (the original's layout) and channels-last (ours), with its GFLOP/s, and two
Winograd algorithms (Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks", CVPR
2016) written with torch ops: F(2x2, 3x3) (16 products per 2x2 output tile instead of 36) and
F(4x4, 3x3) (36 instead of 144). Each takes overlapping input tiles, applies the input
transform `B^T d B` as one matrix product, multiplies per tile position with the transformed
weights `G g G^T` (one batched GEMM), and applies the output transform `A^T m A`. The errors
are normwise against a float64 convolution.

    python benchmarks/conv_rate.py [--threads 2] [--json]

Medians of `--rounds` calls, wall clock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from functools import partial

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import alternate, median  # noqa: E402

SHAPES = ((64, 128), (64, 64), (64, 32), (128, 32), (128, 16), (128, 8))  # (channels, size)


def winograd_matrices(m: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """`(B^T, G, A^T)` of F(m x m, 3 x 3), float64 (Lavin & Gray 2016)."""
    if m == 2:
        bt = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]]
        g = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        at = [[1, 1, 1, 0], [0, 1, -1, -1]]
    elif m == 4:
        bt = [
            [4, 0, -5, 0, 1, 0],
            [0, -4, -4, 1, 1, 0],
            [0, 4, -4, -1, 1, 0],
            [0, -2, -1, 2, 1, 0],
            [0, 2, -1, -2, 1, 0],
            [0, 4, 0, -5, 0, 1],
        ]
        g = [
            [1 / 4, 0, 0],
            [-1 / 6, -1 / 6, -1 / 6],
            [-1 / 6, 1 / 6, -1 / 6],
            [1 / 24, 1 / 12, 1 / 6],
            [1 / 24, -1 / 12, 1 / 6],
            [0, 0, 1],
        ]
        at = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0], [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]]
    else:
        raise ValueError(f"F({m}, 3) is not implemented; use 2 or 4")
    return tuple(torch.tensor(v, dtype=torch.float64) for v in (bt, g, at))


class Winograd3x3:
    """A 3x3, stride-1, padding-1 convolution by F(m x m, 3 x 3); size divisible by m."""

    def __init__(self, weight: torch.Tensor, bias: torch.Tensor, m: int) -> None:
        bt, g, at = winograd_matrices(m)
        a = m + 2
        c_out, c_in = weight.shape[:2]
        u = torch.einsum("ai,ocij,bj->abco", g, weight.double(), g)  # (a, a, C_in, C_out)
        self.u = u.reshape(a * a, c_in, c_out).float().contiguous()
        self.b_in = torch.kron(bt, bt).float()  # (a*a, a*a)
        self.a_out = torch.kron(at, at).float()  # (m*m, a*a)
        self.bias, self.m = bias, m

    def __call__(self, x: torch.Tensor) -> torch.Tensor:  # (N, C, H, W) channels-last
        m, a = self.m, self.m + 2
        n, c, h, w = x.shape
        t_h, t_w = h // m, w // m
        xp = F.pad(x, (1, 1, 1, 1)).contiguous(memory_format=torch.channels_last)
        sn, sc, sh, sw = xp.stride()
        tiles = xp.as_strided((a, a, n, t_h, t_w, c), (sh, sw, sn, m * sh, m * sw, sc))
        d = tiles.reshape(a * a, n * t_h * t_w * c)  # (a*a, N*T*C), a copy
        v = (self.b_in @ d).view(a * a, n * t_h * t_w, c)  # B^T d B per tile
        prod = torch.bmm(v, self.u)  # (a*a, N*T, C_out)
        y = (self.a_out @ prod.view(a * a, -1)).view(m, m, n, t_h, t_w, -1)  # (m, m, N, T, T, Co)
        c_out = y.shape[-1]
        out = torch.empty(n, c_out, h, w, memory_format=torch.channels_last)
        out.permute(0, 2, 3, 1).view(n, t_h, m, t_w, m, c_out).copy_(y.permute(2, 3, 0, 4, 1, 5))
        return out.add_(self.bias.view(1, -1, 1, 1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    gen = torch.Generator().manual_seed(0)
    rows = []
    with torch.inference_mode():
        for c, size in SHAPES:
            x = torch.randn(args.batch, c, size, size, generator=gen)
            w = torch.randn(c, c, 3, 3, generator=gen) / (3 * c**0.5)
            b = torch.randn(c, generator=gen)
            x_cl, w_cl = (t.contiguous(memory_format=torch.channels_last) for t in (x, w))
            ref = F.conv2d(x.double(), w.double(), b.double(), padding=1)
            gflop = 2 * ref.numel() * w[0].numel() / 1e9
            sides = {
                "nchw": partial(F.conv2d, x, w, b, padding=1),
                "channels_last": partial(F.conv2d, x_cl, w_cl, b, padding=1),
                "winograd_f2": partial(Winograd3x3(w, b, 2), x_cl),
                "winograd_f4": partial(Winograd3x3(w, b, 4), x_cl),
            }
            row = {"channels": c, "size": size}
            for name, call in sides.items():
                ms = median(alternate({name: call}, args.rounds)[name]) * 1e3
                err = ((call().double() - ref).norm() / ref.norm()).item()
                row[name] = {"ms": round(ms, 3), "gflops": round(gflop / ms * 1e3), "err": err}
            rows.append(row)
            print(
                f"{c:4d} ch {size:3d}x{size:<3d} "
                + "  ".join(
                    f"{k} {row[k]['ms']:.2f} ms ({row[k]['gflops']} GFLOP/s eq., err "
                    f"{row[k]['err']:.1e})"
                    for k in sides
                )
            )
    if args.json:
        print(json.dumps({"threads": args.threads, "batch": args.batch, "rows": rows}))


if __name__ == "__main__":
    main()
