"""Kernels without VNNI on this host: the decode formats under `benchutil.ISA_CAPS["avx2"]`.

`make bench ISA=avx2` caps ATen, oneDNN, MKL and fbgemm at AVX2 to measure the kernels an
AVX2-only CPU runs. These tests run a child process under the same caps and check that the
cap takes effect and that the opt-in formats stay correct there. The case that matters is
`w8a8`: without AVX512-VNNI, fbgemm's integer GEMM forms the products of two adjacent
8-bit lanes in a *saturating* int16 (`vpmaddubsw`) before widening to int32. With 8-bit
activations (0..255) times 8-bit weights a pair reaches 2 * 255 * 127 = 64770 and saturates;
the 7-bit activations `w8a8` uses (`reduce_range`, 0..127) keep every pair within
2 * 127 * 127 = 32258 < 32767. The adversarial input below puts every pair at that maximum.
fbgemm's AVX-512 kernel without VNNI (Skylake-SP) has the same pair, so that is checked too.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from benchutil import ISA_CAPS, isa_env  # noqa: E402

CHILD = r"""
import json, torch
from taming.transformer import cpu_matmul
from taming.transformer.cpu_matmul import DecodeLinear, quantize_int8

out = {"capability": torch.backends.cpu.get_cpu_capability()}
torch.manual_seed(0)
# adversarial: all activations at the top level, all weights at +-127 with equal signs in
# adjacent lanes, so each int16 pair product is the largest the format allows
n_in, n_out = 256, 32
w = torch.ones(n_out, n_in)
w[1::2] = -1.0  # odd rows negative: both saturation directions
x = torch.ones(8, n_in)
x[:, 0] = 0.0  # the range includes 0 anyway; the rest sit at level 127
lin = DecodeLinear([w], [torch.zeros(n_out)], "w8a8")
out["w8a8_uses_fbgemm"] = lin._w8a8 is not None
wq, scale = quantize_int8(w)
xq = cpu_matmul.fake_quant_activations(x).double()
ref = xq @ (wq.double() * scale.double()[:, None]).t()
y = lin(x).double()
out["w8a8_adversarial_rel_err"] = ((y - ref).abs().max() / ref.abs().max()).item()
# the same product by fbgemm directly, 7-bit (reduce_range) and 8-bit activations: x in {0, 1}
# and w = +-1 are exact on both grids, so any error is the kernel's
exact = x.double() @ w.double().t()
packed = cpu_matmul._pack(cpu_matmul._w8a8_engine() or "fbgemm", wq, scale, None)
for reduce_range in (True, False):
    y = torch.ops.quantized.linear_dynamic(x, packed, reduce_range).double()
    out[f"fbgemm_rel_err_reduce_range_{reduce_range}"] = (
        ((y - exact).abs().max() / exact.abs().max()).item()
    )
# random input at 1 and 8 rows against the literal rounding
for rows in (1, 8):
    w, x = torch.randn(96, 128), torch.randn(rows, 128) * 2 + 0.3
    lin = DecodeLinear([w], None, "w8a8")
    wq, scale = quantize_int8(w)
    wd = wq.double() * scale.double()[:, None]  # (96, 128)
    ref = cpu_matmul.fake_quant_activations(x).double() @ wd.t()
    err = (lin(x).double() - ref).abs().max() / ref.abs().max()
    out[f"w8a8_random_rel_err_{rows}"] = err.item()
    for fmt in ("int8", "bf16"):
        lin = DecodeLinear([w], None, fmt)
        exact = x.double() @ w.double().t()
        err = ((lin(x).double() - exact).abs().max() / exact.abs().max()).item()
        out[f"{fmt}_rel_err_{rows}"] = err
print(json.dumps(out))
"""


# AVX-512 without VNNI (Skylake-SP): fbgemm's AVX-512 kernel also uses the saturating pair
SKYLAKE = {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE", "FBGEMM_ENABLE_INSTRUCTIONS": "AVX512"}


def _run_capped(script: str, caps: dict[str, str]) -> dict:
    env = isa_env("avx2")  # no caps of the parent's run left over, own inductor cache
    for key in ISA_CAPS["avx2"]:
        env.pop(key)
    env.update(caps, PYTHONPATH=str(ROOT / "src"))
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    line = next((ln for ln in text.splitlines() if ln.startswith("flags")), "")
    return set(line.partition(":")[2].split())


@pytest.mark.parametrize(
    ("caps", "needs", "capability"),
    [(ISA_CAPS["avx2"], "avx2", "AVX2"), (SKYLAKE, "avx512f", "AVX512")],
    ids=["avx2", "avx512-without-vnni"],
)
def test_decode_formats_are_exact_without_vnni(caps, needs, capability):
    if needs not in _cpu_flags():
        pytest.skip(f"needs an x86 CPU with {needs}")
    res = _run_capped(CHILD, caps)
    assert res["capability"] == capability  # the cap took effect for ATen
    # fbgemm runs (its probe found it agreeing with the literal rounding) and does not saturate
    # on the worst case; a saturating int16 pair would be off by about half (32767 / 64770)
    assert res["w8a8_uses_fbgemm"], "fbgemm's AVX2 path was rejected by the w8a8 probe"
    assert res["w8a8_adversarial_rel_err"] < 1e-5
    assert res["fbgemm_rel_err_reduce_range_True"] < 1e-5
    # the input is adversarial: with 8-bit activations the AVX2 kernel saturates on it (this is
    # why w8a8 rounds activations to 7 bits); VNNI's `vpdpbusd` would not
    assert res["fbgemm_rel_err_reduce_range_False"] > 0.1
    for rows in (1, 8):
        assert res[f"w8a8_random_rel_err_{rows}"] < 1e-4
        assert res[f"int8_rel_err_{rows}"] < 2e-2  # weight rounding: <= 1/254 per weight
        assert res[f"bf16_rel_err_{rows}"] < 2e-2  # bf16 operands: 2^-8 relative each
