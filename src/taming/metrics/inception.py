"""The FID Inception-v3: the 2015-12-05 TensorFlow graph in PyTorch, as torch-fidelity runs it.

"Rethinking the Inception Architecture" (Szegedy et al., 2016) is the network; FID (Heusel et
al., 2017) reads its 2048-d `pool_3` features and the Inception Score (Salimans et al., 2016)
its 1008-way logits. The FID graph differs from torchvision's Inception-v3 in ways that change
the numbers, kept here as torch-fidelity's `FeatureExtractorInceptionV3` documents them:

- input: uint8 RGB `(B, 3, H, W)` of any size, resized *inside* the network to 299x299 with
  TensorFlow 1.x bilinear resampling (`align_corners=False`, no half-pixel offset: source
  coordinate `i * in / out`, neighbours `floor` and `floor + 1` clamped to the border), then
  scaled to `(x - 128) / 128`;
- the average-pool branches of the Mixed_5/6/7b blocks divide by the number of valid
  (unpadded) pixels; the pool branch of the last block (Mixed_7c) is a 3x3 *max* pool;
- BatchNorm eps 1e-3; convolutions without bias; `fc` maps 2048 -> 1008 classes.
- outputs: `pool3` (B, 2048) after global average pooling (FID, KID) and `logits_unbiased`
  (B, 1008) = `pool3 @ fc.weight.T` without the bias (IS).

Parameter names are those of both weight files (`Conv2d_1a_3x3.conv.weight`,
`Mixed_5b.branch1x1.bn.running_mean`, ..., `fc.weight`), so either loads strictly
(`load_inception`). This module is the reference form; `taming.metrics.inception_fast` builds
the inference form used for extraction (BatchNorm folded, parallel 1x1 convolutions merged).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

logger = logging.getLogger(__name__)

__all__ = [
    "FIDInceptionV3",
    "InceptionWeightsError",
    "load_inception",
    "read_inception_state_dict",
    "tf1_bilinear_resize",
    "tf1_resize_matrix",
]

INPUT_SIZE = 299


class InceptionWeightsError(ValueError):
    """A weights file that is not the FID Inception-v3 (names the file and the first bad key)."""


# -- TF1 bilinear resize -------------------------------------------------------------------


def tf1_resize_matrix(n_in: int, n_out: int, dtype: torch.dtype = torch.float64) -> Tensor:
    """`(n_out, n_in)` interpolation matrix of TF 1.x bilinear resizing (align_corners=False).

    Output pixel `i` samples the input at `s = i * (n_in / n_out)` (computed in float32, as TF
    and torch-fidelity do): `(1 - d) * x[floor(s)] + d * x[min(floor(s) + 1, n_in - 1)]`.
    """
    scale = torch.tensor(n_in / n_out, dtype=torch.float32)
    src = torch.arange(n_out, dtype=torch.float32) * scale  # (n_out,)
    lo = src.long()
    hi = (lo + 1).clamp_max(n_in - 1)
    d = (src - lo.float()).to(dtype)
    m = torch.zeros(n_out, n_in, dtype=dtype)
    rows = torch.arange(n_out)
    m.index_put_((rows, lo), 1 - d, accumulate=True)
    m.index_put_((rows, hi), d, accumulate=True)
    return m


_RESIZE_CACHE: dict[tuple[int, int, torch.dtype, torch.device], Tensor] = {}


def _resize_matrix_cached(n_in: int, n_out: int, dtype: torch.dtype, device: torch.device):
    key = (n_in, n_out, dtype, device)
    m = _RESIZE_CACHE.get(key)
    if m is None:
        m = _RESIZE_CACHE[key] = tf1_resize_matrix(n_in, n_out).to(device=device, dtype=dtype)
    return m


def tf1_bilinear_resize(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Resize float `(B, C, H, W)` to `size` like TF 1.x `resize_bilinear` (two matmuls)."""
    b, c, h, w = x.shape
    oh, ow = size
    if (h, w) == (oh, ow):
        return x
    my = _resize_matrix_cached(h, oh, x.dtype, x.device)  # (oh, h)
    mx = _resize_matrix_cached(w, ow, x.dtype, x.device)  # (ow, w)
    y = torch.matmul(x.reshape(b * c, h, w), mx.t())  # (B*C, h, ow)
    y = torch.matmul(my, y)  # (B*C, oh, ow)
    return y.reshape(b, c, oh, ow)


# -- the network (reference form) ------------------------------------------------------------


class BasicConv2d(nn.Module):
    """Conv (no bias) -> BatchNorm (eps 1e-3) -> ReLU; keys `conv.weight`, `bn.*`."""

    def __init__(self, c_in: int, c_out: int, kernel_size, stride=1, padding=0) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(c_out, eps=0.001)

    def forward(self, x: Tensor) -> Tensor:
        return F.relu(self.bn(self.conv(x)))


def _avg3(x: Tensor) -> Tensor:
    """3x3 stride-1 average over the valid pixels only (TF's SAME average pool)."""
    return F.avg_pool2d(x, 3, stride=1, padding=1, count_include_pad=False)


class InceptionA(nn.Module):
    """35x35 block: 1x1 | 1x1-5x5 | 1x1-3x3-3x3 | avg-1x1 (Mixed_5b/c/d)."""

    def __init__(self, c_in: int, pool_features: int) -> None:
        super().__init__()
        self.branch1x1 = BasicConv2d(c_in, 64, 1)
        self.branch5x5_1 = BasicConv2d(c_in, 48, 1)
        self.branch5x5_2 = BasicConv2d(48, 64, 5, padding=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, padding=1)
        self.branch_pool = BasicConv2d(c_in, pool_features, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch5x5_2(self.branch5x5_1(x))
        c = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        d = self.branch_pool(_avg3(x))
        return torch.cat((a, b, c, d), 1)


class InceptionB(nn.Module):
    """35 -> 17 reduction: 3x3/2 | 1x1-3x3-3x3/2 | max 3x3/2 (Mixed_6a)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3 = BasicConv2d(c_in, 384, 3, stride=2)
        self.branch3x3dbl_1 = BasicConv2d(c_in, 64, 1)
        self.branch3x3dbl_2 = BasicConv2d(64, 96, 3, padding=1)
        self.branch3x3dbl_3 = BasicConv2d(96, 96, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3(x)
        b = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat((a, b, F.max_pool2d(x, 3, stride=2)), 1)


class InceptionC(nn.Module):
    """17x17 block with factorised 7x7 convolutions (Mixed_6b/c/d/e)."""

    def __init__(self, c_in: int, channels_7x7: int) -> None:
        super().__init__()
        c7 = channels_7x7
        self.branch1x1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7_2 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7_3 = BasicConv2d(c7, 192, (7, 1), padding=(3, 0))
        self.branch7x7dbl_1 = BasicConv2d(c_in, c7, 1)
        self.branch7x7dbl_2 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_3 = BasicConv2d(c7, c7, (1, 7), padding=(0, 3))
        self.branch7x7dbl_4 = BasicConv2d(c7, c7, (7, 1), padding=(3, 0))
        self.branch7x7dbl_5 = BasicConv2d(c7, 192, (1, 7), padding=(0, 3))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        c = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4):
            c = layer(c)
        c = self.branch7x7dbl_5(c)
        d = self.branch_pool(_avg3(x))
        return torch.cat((a, b, c, d), 1)


class InceptionD(nn.Module):
    """17 -> 8 reduction: 1x1-3x3/2 | 1x1-1x7-7x1-3x3/2 | max 3x3/2 (Mixed_7a)."""

    def __init__(self, c_in: int) -> None:
        super().__init__()
        self.branch3x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch3x3_2 = BasicConv2d(192, 320, 3, stride=2)
        self.branch7x7x3_1 = BasicConv2d(c_in, 192, 1)
        self.branch7x7x3_2 = BasicConv2d(192, 192, (1, 7), padding=(0, 3))
        self.branch7x7x3_3 = BasicConv2d(192, 192, (7, 1), padding=(3, 0))
        self.branch7x7x3_4 = BasicConv2d(192, 192, 3, stride=2)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch3x3_2(self.branch3x3_1(x))
        b = self.branch7x7x3_1(x)
        for layer in (self.branch7x7x3_2, self.branch7x7x3_3, self.branch7x7x3_4):
            b = layer(b)
        return torch.cat((a, b, F.max_pool2d(x, 3, stride=2)), 1)


class InceptionE(nn.Module):
    """8x8 block with split 1x3/3x1 outputs (Mixed_7b: avg pool branch; Mixed_7c: max pool).

    Args:
        c_in: input channels.
        pool: "avg" (count valid pixels only) or "max", the pool in front of `branch_pool`.
    """

    def __init__(self, c_in: int, pool: str) -> None:
        super().__init__()
        if pool not in ("avg", "max"):
            raise ValueError(f"pool must be 'avg' or 'max', got {pool!r}")
        self.pool = pool
        self.branch1x1 = BasicConv2d(c_in, 320, 1)
        self.branch3x3_1 = BasicConv2d(c_in, 384, 1)
        self.branch3x3_2a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3_2b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch3x3dbl_1 = BasicConv2d(c_in, 448, 1)
        self.branch3x3dbl_2 = BasicConv2d(448, 384, 3, padding=1)
        self.branch3x3dbl_3a = BasicConv2d(384, 384, (1, 3), padding=(0, 1))
        self.branch3x3dbl_3b = BasicConv2d(384, 384, (3, 1), padding=(1, 0))
        self.branch_pool = BasicConv2d(c_in, 192, 1)

    def pooled(self, x: Tensor) -> Tensor:
        return _avg3(x) if self.pool == "avg" else F.max_pool2d(x, 3, stride=1, padding=1)

    def forward(self, x: Tensor) -> Tensor:
        a = self.branch1x1(x)
        b = self.branch3x3_1(x)
        b = torch.cat((self.branch3x3_2a(b), self.branch3x3_2b(b)), 1)
        c = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        c = torch.cat((self.branch3x3dbl_3a(c), self.branch3x3dbl_3b(c)), 1)
        d = self.branch_pool(self.pooled(x))
        return torch.cat((a, b, c, d), 1)


class FIDInceptionV3(nn.Module):
    """The FID Inception-v3 (reference form). `forward(uint8 images)` -> `(pool3, logits)`.

    Args:
        input_size: side the images are resized to inside the network (299; smaller values,
            at least 75, only for fast tests with random weights).
    """

    def __init__(self, input_size: int = INPUT_SIZE) -> None:
        super().__init__()
        if input_size < 75:
            raise ValueError(f"input_size must be >= 75 (Inception-v3), got {input_size}")
        self.input_size = int(input_size)
        self.Conv2d_1a_3x3 = BasicConv2d(3, 32, 3, stride=2)
        self.Conv2d_2a_3x3 = BasicConv2d(32, 32, 3)
        self.Conv2d_2b_3x3 = BasicConv2d(32, 64, 3, padding=1)
        self.Conv2d_3b_1x1 = BasicConv2d(64, 80, 1)
        self.Conv2d_4a_3x3 = BasicConv2d(80, 192, 3)
        self.Mixed_5b = InceptionA(192, pool_features=32)
        self.Mixed_5c = InceptionA(256, pool_features=64)
        self.Mixed_5d = InceptionA(288, pool_features=64)
        self.Mixed_6a = InceptionB(288)
        self.Mixed_6b = InceptionC(768, channels_7x7=128)
        self.Mixed_6c = InceptionC(768, channels_7x7=160)
        self.Mixed_6d = InceptionC(768, channels_7x7=160)
        self.Mixed_6e = InceptionC(768, channels_7x7=192)
        self.Mixed_7a = InceptionD(768)
        self.Mixed_7b = InceptionE(1280, pool="avg")
        self.Mixed_7c = InceptionE(2048, pool="max")
        self.fc = nn.Linear(2048, 1008)
        self.requires_grad_(False)
        self.eval()

    def preprocess(self, images: Tensor) -> Tensor:
        """uint8 `(B, 3, H, W)` -> float32 `(B, 3, S, S)` in [-1, 1) (TF1 resize, then scale)."""
        if images.dtype != torch.uint8 or images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(
                f"expected uint8 images (B, 3, H, W), got {images.dtype} {tuple(images.shape)}"
            )
        x = tf1_bilinear_resize(images.float(), (self.input_size, self.input_size))
        return (x - 128) / 128

    def forward(self, images: Tensor) -> tuple[Tensor, Tensor]:
        """uint8 images `(B, 3, H, W)` -> `(pool3 (B, 2048), logits_unbiased (B, 1008))`."""
        x = self.preprocess(images)
        x = self.Conv2d_2b_3x3(self.Conv2d_2a_3x3(self.Conv2d_1a_3x3(x)))  # (B, 64, 147, 147)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 64, 73, 73)
        x = self.Conv2d_4a_3x3(self.Conv2d_3b_1x1(x))  # (B, 192, 71, 71)
        x = F.max_pool2d(x, 3, stride=2)  # (B, 192, 35, 35)
        for name in ("5b", "5c", "5d", "6a", "6b", "6c", "6d", "6e", "7a", "7b", "7c"):
            x = getattr(self, f"Mixed_{name}")(x)  # ... -> (B, 2048, 8, 8)
        pool3 = x.mean((2, 3))  # (B, 2048)
        return pool3, pool3 @ self.fc.weight.t()


# -- weights ---------------------------------------------------------------------------------

_OPTIONAL = ("num_batches_tracked",)


def read_inception_state_dict(path: str | os.PathLike) -> dict[str, Tensor]:
    """Tensors of a torch-fidelity or pytorch-fid weights file (`.pth`; `.safetensors` too),
    with `num_batches_tracked` entries and a `module.` prefix removed."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            sd = load_file(str(path))
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated download, an HTML page, a pickle with code
        raise InceptionWeightsError(f"{path}: cannot read Inception weights ({e})") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise InceptionWeightsError(f"{path}: not a state dict ({type(sd).__name__})")
    out = {}
    for k, v in sd.items():
        k = k[len("module.") :] if k.startswith("module.") else k
        if not k.endswith(_OPTIONAL):
            out[k] = v
    return out


def _counters(sd: dict[str, Tensor]) -> dict[str, Tensor]:
    return {k: v for k, v in sd.items() if k.endswith(_OPTIONAL)}


def load_inception(
    path: str | os.PathLike, input_size: int = INPUT_SIZE, device: str | torch.device = "cpu"
) -> FIDInceptionV3:
    """The reference network with the weights of `path`, loaded strictly (eval, no grad)."""
    sd = read_inception_state_dict(path)
    with torch.device("meta"):  # no random init of 24M parameters: they are overwritten
        model = FIDInceptionV3(input_size=input_size)
    expected = {k: v for k, v in model.state_dict().items() if not k.endswith(_OPTIONAL)}
    missing = [k for k in expected if k not in sd]
    unexpected = [k for k in sd if k not in expected]
    if missing or unexpected:
        what = f"missing key '{missing[0]}'" if missing else f"unexpected key '{unexpected[0]}'"
        raise InceptionWeightsError(
            f"{path}: not the FID Inception-v3 weights ({what}; {len(missing)} missing, "
            f"{len(unexpected)} unexpected)"
        )
    for k, v in expected.items():
        if tuple(sd[k].shape) != tuple(v.shape):
            raise InceptionWeightsError(
                f"{path}: '{k}' has shape {tuple(sd[k].shape)}, expected {tuple(v.shape)}"
            )
    for k, v in model.state_dict().items():
        if k.endswith(_OPTIONAL):
            sd[k] = torch.zeros((), dtype=v.dtype)
    model.load_state_dict({k: v.float() for k, v in sd.items()} | _counters(sd), assign=True)
    logger.info("FID Inception-v3 weights: %s", path)
    return model.to(device)
