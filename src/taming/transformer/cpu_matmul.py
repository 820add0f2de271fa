"""The matrix products of incremental GPT decoding, and the weight formats they read.

Decoding one token at a time turns every Linear into a skinny product (1-16 rows against a
`(out, in)` weight): memory bound at batch 1, latency bound up to a few dozen rows. Which
kernel is fastest there depends on the CPU and on the number of rows, so the choice lives here,
apart from the model's maths (`gpt.py` calls `DecodeLinear` in place of its `nn.Linear`s).

Float32 on CPU (2 threads, 8 x 512-wide benchmark GPT, every Linear once, ms; AVX2 EPYC):

    rows                       1     2     4     8    32    128   512
    F.linear (MKL)           8.5  13.0  12.6  11.5  24.7  62.8  190
    2 output slices, bmm     3.1   4.7   6.2   8.6  18.8  52.9  179
    oneDNN, packed weight    5.2   5.2   5.9   6.9  13.9  43.4  166

Up to `_COLUMN_MAX_ROWS` rows: `W @ x^T` with the weight's `(out, in)` layout cut into
`_SPLITS` output slices, one `bmm` (both cores stream half the weight each, no copy). Above:
oneDNN's linear with a weight reordered once into its blocked layout, where that private op
works; otherwise `x @ W^T` in output slices, or `F.linear` beyond `_SPLIT_MAX_ROWS` rows.

Opt-in weight formats (weight-only: activations, LayerNorms, attention and the KV cache stay
float32; every product accumulates in float32):
  * `"bf16"` / `"fp16"`: the weight rounded to half precision (half the bytes per token);
  * `"int8"`: symmetric per-output-channel int8, `W ~= scale[:, None] * Wq` with
    `scale = max|W_row| / 127` (a quarter of the bytes), multiplied by
    `aten._weight_int8pack_mm` where it exists (bf16 activations and output, float32
    accumulation: its fast CPU path), else by a dequantised copy per call.
  * `"w8a8"` (not weight-only): the same int8 weights, and each call's input quantised to
    7-bit unsigned integers with one scale and zero point per call (dynamic per-tensor
    quantisation over the input's range including 0, `reduce_range` as PyTorch's x86 dynamic
    quantisation uses it), multiplied in integers by fbgemm (`quantized.linear_dynamic`, AVX2 /
    AVX-512 VNNI kernels; int32 accumulation, float32 output). At 8 rows its products are
    several times faster than float32 or `"int8"`, whose kernels are compute bound there;
    the activation rounding adds error (see `fake_quant_activations`). Where fbgemm is missing
    (or under `torch.compile`) the same maths runs in float32 with dequantised operands.
Whether a format is faster than float32 depends on the CPU (native bf16 dot products or not):
`GPT.to_low_precision` times the model's whole decode step (`step_speed`); `format_speed` times
the products alone, to see how much of a step they are.

Every private-op call (`torch.ops.mkldnn.*`, `aten._weight_int8pack_mm`) is tried once on a
tiny input and falls back to the public ops when it fails.
"""

from __future__ import annotations

import logging
import time
import warnings
from functools import cache

import torch
import torch.nn.functional as F
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["FORMATS", "DecodeLinear", "fake_quant_activations", "format_speed", "quantize_int8"]

FORMATS = ("bf16", "fp16", "int8", "w8a8")
_HALF = {"bf16": torch.bfloat16, "fp16": torch.float16}
_SPLITS = 2
_COLUMN_MAX_ROWS = 2
_SPLIT_MAX_ROWS = 128


def quantize_int8(weight: Tensor) -> tuple[Tensor, Tensor]:
    """Symmetric per-output-channel int8: `(Wq (out, in) int8, scale (out,) float32)` with
    `weight ~= scale[:, None] * Wq`, `|Wq| <= 127`, rounding to nearest (error <= scale / 2)."""
    w = weight.detach().float()
    scale = w.abs().amax(dim=1).clamp_min(torch.finfo(torch.float32).tiny) / 127.0  # (out,)
    wq = torch.round(w / scale[:, None]).clamp_(-127, 127).to(torch.int8)
    return wq, scale


_ACT_LEVELS = 127  # 7-bit activations: fbgemm's `reduce_range`, safe without VNNI too


def fake_quant_activations(x: Tensor) -> Tensor:
    """`x` rounded as `"w8a8"` quantises it (literal float maths): one scale and zero point
    for the whole tensor, over `[min(x, 0), max(x, 0)]` in `_ACT_LEVELS` steps,
    `x ~= (xq - zp) * step`, `xq` in `[0, _ACT_LEVELS]` (error <= step / 2 per element)."""
    lo, hi = x.min().clamp(max=0.0), x.max().clamp(min=0.0)
    step = ((hi - lo) / _ACT_LEVELS).clamp_min(torch.finfo(torch.float32).tiny)
    zp = torch.round(-lo / step).clamp(0, _ACT_LEVELS)
    return (torch.round(x / step + zp).clamp(0, _ACT_LEVELS) - zp) * step


def _w8a8_pack(wq: Tensor, scale: Tensor, bias: Tensor | None) -> object | None:
    """fbgemm's packed `(Wq, scale, bias)` for `quantized.linear_dynamic`, or None where this
    torch has no working fbgemm (quantized tensors are deprecated in torch: private API)."""
    engine = _w8a8_engine()
    if engine is None or wq.device.type != "cpu":
        return None
    return _pack(engine, wq, scale, bias)


def _pack(engine: str, wq: Tensor, scale: Tensor, bias: Tensor | None) -> object:
    previous = torch.backends.quantized.engine
    try:
        torch.backends.quantized.engine = engine
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # "quantized tensors are deprecated"
            zero = torch.zeros(wq.shape[0], dtype=torch.long)
            q = torch._make_per_channel_quantized_tensor(wq, scale.double(), zero, 0)
            return torch.ops.quantized.linear_prepack(q, bias)
    finally:
        torch.backends.quantized.engine = previous


@cache
def _w8a8_engine() -> str | None:
    """The quantized engine (fbgemm, else x86) whose dynamic int8 linear runs here and matches
    `fake_quant_activations`, or None."""
    engines = torch.backends.quantized.supported_engines
    engine = next((e for e in ("fbgemm", "x86") if e in engines), None)
    return engine if engine is not None and _w8a8_works(engine) else None


def _w8a8_works(engine: str) -> bool:
    """Whether `engine`'s dynamic int8 linear runs here and matches `fake_quant_activations`."""
    gen = torch.Generator().manual_seed(0)
    w, b, x = (torch.randn(*s, generator=gen) for s in ((8, 64), (8,), (3, 64)))
    wq, scale = quantize_int8(w)
    try:
        y = torch.ops.quantized.linear_dynamic(x, _pack(engine, wq, scale, b), True)
    except (AttributeError, RuntimeError, NotImplementedError):
        logger.debug("quantized.linear_dynamic (%s) is not available", engine)
        return False
    ref = fake_quant_activations(x).double() @ (wq.double() * scale.double()[:, None]).t()
    ok = bool(torch.allclose(y.double(), ref + b.double(), rtol=0, atol=1e-3 * ref.abs().max()))
    if not ok:
        logger.debug("quantized.linear_dynamic (%s) disagrees with its definition here", engine)
    return ok


def _onednn_linear_weight(weight: Tensor) -> Tensor | None:
    """The weight in oneDNN's blocked linear layout, or None where this torch cannot."""
    if not torch.backends.mkldnn.is_available():
        return None
    try:
        packed = torch.ops.mkldnn._reorder_linear_weight(weight, 8)
        torch.ops.mkldnn._linear_pointwise(
            weight.new_zeros(1, weight.shape[1]), packed, None, "none", [], ""
        )
    except (AttributeError, RuntimeError, NotImplementedError):  # private ops: be defensive
        logger.debug("oneDNN linear is not available; using bmm output slices")
        return None
    return packed


# `aten._weight_int8pack_mm` (torch 2.13, CPU) reads the input axis in blocks: seen here, K = 4
# crashes the process and K = 40 returns NaN, while multiples of 16 are right. It is only
# called where K is a multiple of this.
_INT8_MM_K_MULTIPLE = 32


@cache
def _int8_mm_works() -> bool:
    """Whether `aten._weight_int8pack_mm` runs, and is right, on bf16 CPU inputs here."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, _INT8_MM_K_MULTIPLE, generator=gen).to(torch.bfloat16)
    wq = torch.randint(-127, 128, (5, _INT8_MM_K_MULTIPLE), generator=gen, dtype=torch.int8)
    scale = torch.rand(5, generator=gen).add_(0.5).to(torch.bfloat16)
    try:
        y = torch.ops.aten._weight_int8pack_mm(x, wq, scale)
    except (AttributeError, RuntimeError, NotImplementedError):
        logger.debug("aten._weight_int8pack_mm is not available; dequantising per call")
        return False
    ref = x.double() @ (wq.double() * scale.double()[:, None]).t()  # (3, 5)
    ok = bool(torch.allclose(y.double(), ref, rtol=1e-2, atol=1e-2 * ref.abs().max().item()))
    if not ok:
        logger.debug("aten._weight_int8pack_mm gives wrong results here; dequantising per call")
    return ok


def _tracing() -> bool:
    """Whether `torch.compile` is tracing: inductor cannot lower oneDNN's packed weights, so
    a compiled step multiplies with the public ops (which inductor lowers itself)."""
    return torch.compiler.is_compiling()


class DecodeLinear:
    """`x @ W^T + b` over the last axis, for one Linear or several sharing the input.

    Several weights (q/k/v) are concatenated along the output axis. The result is in the
    input's dtype; every output element is one float32-accumulated dot product over the whole
    input axis, as in `F.linear` (exactly float32 maths without a format, the quantised weight's
    otherwise). The oneDNN copy of a float32 weight is made on the first call with more than
    `_COLUMN_MAX_ROWS` rows.

    Args:
        weights: `(out_i, in)` weights.
        biases: Their biases, or None.
        fmt: None (the weights' own dtype), `"bf16"`, `"fp16"` or `"int8"`.
    """

    __slots__ = (
        "fmt",
        "_weight",
        "_scale",
        "_scale_bf16",
        "_bias",
        "_cpu_fp32",
        "_onednn",
        "_int8_fused",
        "_w8a8",
    )

    def __init__(
        self, weights: list[Tensor], biases: list[Tensor] | None, fmt: str | None = None
    ) -> None:
        if fmt is not None and fmt not in FORMATS:
            raise ValueError(f"unknown weight format {fmt!r}; choose from {list(FORMATS)}")
        w = (weights[0] if len(weights) == 1 else torch.cat(weights)).detach()  # (out, in)
        self.fmt = fmt
        self._bias = None if biases is None else torch.cat([b.detach() for b in biases])
        self._scale: Tensor | None = None
        self._int8_fused = False
        self._w8a8 = None
        if fmt in ("int8", "w8a8"):
            self._weight, self._scale = quantize_int8(w)
            if fmt == "int8":
                self._scale_bf16 = self._scale.to(torch.bfloat16)
                # decided here, not per call, so that a compiled step traces no probe
                self._int8_fused = (
                    w.device.type == "cpu" and w.shape[1] % _INT8_MM_K_MULTIPLE == 0
                ) and _int8_mm_works()
            else:
                bias = None if self._bias is None else self._bias.float()
                self._w8a8 = _w8a8_pack(self._weight, self._scale, bias)
        else:
            self._weight = w.to(_HALF[fmt]) if fmt in _HALF else w
        self._cpu_fp32 = (
            fmt is None
            and w.device.type == "cpu"
            and w.dtype == torch.float32
            and w.shape[0] % _SPLITS == 0
        )
        self._onednn: Tensor | None | bool = False  # False: not tried yet

    @property
    def out_features(self) -> int:
        return self._weight.shape[0]

    def __call__(self, x: Tensor) -> Tensor:  # x (..., in) -> (..., out)
        if x.dim() == 2:
            return self._matmul(x)
        lead = x.shape[:-1]
        y = self._matmul(x.reshape(-1, x.shape[-1]))  # (N, out)
        return y.view(*lead, y.shape[-1])

    def _matmul(self, x: Tensor) -> Tensor:
        w, b = self._weight, self._bias
        if self.fmt == "int8":
            return self._int8(x)
        if self.fmt == "w8a8":
            return self._w8a8_matmul(x)
        if self.fmt is not None:
            xh, bh = x.to(w.dtype), None if b is None else b.to(w.dtype)
            if self.fmt == "bf16" and w.device.type == "cpu" and not _tracing():
                if self._onednn is False:
                    self._onednn = _onednn_linear_weight(w)
                if self._onednn is not None:
                    y = torch.ops.mkldnn._linear_pointwise(xh, self._onednn, bh, "none", [], "")
                    return y.to(x.dtype)
            return F.linear(xh, w, bh).to(x.dtype)
        if not self._cpu_fp32 or x.dtype != w.dtype:
            return F.linear(x, w, b)
        n = x.shape[0]
        out, d_in = w.shape
        ws = w.view(_SPLITS, out // _SPLITS, d_in)  # (S, out/S, in)
        if n <= _COLUMN_MAX_ROWS:
            y = torch.bmm(ws, x.t().expand(_SPLITS, d_in, n)).view(out, n)  # (out, N)
            if b is not None:
                y.add_(b[:, None])
            return y.t().contiguous()  # (N, out)
        if not _tracing():
            if self._onednn is False:
                self._onednn = _onednn_linear_weight(w)
            if self._onednn is not None:
                return torch.ops.mkldnn._linear_pointwise(x, self._onednn, b, "none", [], "")
        if n > _SPLIT_MAX_ROWS:
            return F.linear(x, w, b)
        y = torch.bmm(x.expand(_SPLITS, n, d_in), ws.transpose(1, 2))  # (S, N, out/S)
        y = y.transpose(0, 1).reshape(n, out)  # (N, out), a copy
        return y if b is None else y.add_(b)

    def _int8(self, x: Tensor) -> Tensor:
        wq, b = self._weight, self._bias
        if self._int8_fused:
            # bf16 activations: the op's vectorised CPU path (its fp32 one is ~50x slower)
            xb = x.to(torch.bfloat16).contiguous()
            y = torch.ops.aten._weight_int8pack_mm(xb, wq, self._scale_bf16)  # (N, out) bf16
            if b is not None and b.dtype == x.dtype:
                return torch.add(b, y)  # widened to b's dtype and biased in one op
            y = y.to(x.dtype)
        else:
            y = self._dequantised(x.float()).to(x.dtype)
        return y if b is None else y.add_(b)

    def _dequantised(self, x: Tensor) -> Tensor:
        """float32 `x @ (scale * Wq)^T`: the int8 formats' product without their fused kernels."""
        return F.linear(x, self._weight.float()) * self._scale

    def _w8a8_matmul(self, x: Tensor) -> Tensor:
        if self._w8a8 is not None and not _tracing():
            if x.dtype == torch.float32 and x.is_contiguous():  # the decode step's case
                return torch.ops.quantized.linear_dynamic(x, self._w8a8, True)
            y = torch.ops.quantized.linear_dynamic(x.float().contiguous(), self._w8a8, True)
            return y.to(x.dtype)
        y = self._dequantised(fake_quant_activations(x.float()))
        return (y if self._bias is None else y.add_(self._bias)).to(x.dtype)


def format_speed(fmt: str, shapes: list[tuple[int, int]], rows: int = 1) -> tuple[float, float]:
    """Seconds of one pass over Linears of `shapes` (`(out, in)` each) at `rows` rows,
    `(float32, fmt)`: the least wall time of 15 alternating runs on random weights (~0.1-0.5 s).

    Wall time, because that is what decoding waits for: process CPU time also counts threads
    that spin while they wait, and oneDNN's bf16 kernel spins more (seen here: bf16 8.8 ms of
    CPU time against fp32 7.4, yet 3.2 ms wall against 3.5). The minimum, because on a shared
    machine other processes only ever add time.
    """
    gen = torch.Generator().manual_seed(0)
    weights = [torch.randn(o, i, generator=gen) * 0.02 for o, i in shapes]
    xs = [torch.randn(rows, i, generator=gen) for _, i in shapes]
    sides = [[DecodeLinear([w], None, f) for w in weights] for f in (None, fmt)]

    def once(lins: list[DecodeLinear]) -> float:
        t0 = time.perf_counter()
        for lin, x in zip(lins, xs):
            lin(x)
        return time.perf_counter() - t0

    times: list[list[float]] = [[], []]
    for lins in sides:  # warm-up (oneDNN packing, kernel selection)
        once(lins)
    for _ in range(15):
        for side, lins in enumerate(sides):
            times[side].append(once(lins))
    return min(times[0]), min(times[1])
