"""`taming.compiling.CheckedCompile`: a compiled function checked against eager code.

Unit tests use a stand-in for `torch.compile`, so that the compiled side can be wrong on
purpose. The last test reproduces a real case in child processes: inductor's on-disk kernel
cache (torch 2.13) is not keyed by the vector ISA that `ATEN_CPU_CAPABILITY` selects. Kernels
built with AVX-512 code and then reused with AVX2 code made the compiled VQGAN decoder and GPT
decode step return NaN, and the check catches it.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taming import compiling
from taming.compiling import CheckedCompile
from test_isa_caps import _cpu_flags

ROOT = Path(__file__).resolve().parents[1]


class Calls:
    """A function that counts its calls and returns `scale * x` (+ `offset`)."""

    def __init__(self, scale: float = 2.0, offset: float = 0.0) -> None:
        self.n, self.scale, self.offset = 0, scale, offset

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        self.n += 1
        return x * self.scale + self.offset


def checked(monkeypatch, eager: Calls, compiled: Calls) -> CheckedCompile:
    monkeypatch.setattr(compiling.torch, "compile", lambda fn, **kw: compiled)
    return CheckedCompile(eager, "f")


def test_agreeing_compile_is_checked_once_per_signature(monkeypatch):
    eager, compiled = Calls(), Calls()
    f = checked(monkeypatch, eager, compiled)
    x = torch.randn(3, 4)
    torch.testing.assert_close(f(x), 2 * x)
    assert (eager.n, compiled.n) == (1, 1)  # the first call runs both
    for _ in range(3):
        f(torch.randn(3, 4))
    assert (eager.n, compiled.n) == (1, 4)  # then only the compiled one
    f(torch.randn(5, 4))  # a new shape is checked again
    f(torch.randn(3, 4, dtype=torch.float64))  # and a new dtype
    assert (eager.n, compiled.n) == (3, 6)
    assert not f.failed and len(f.checked) == 3


@pytest.mark.parametrize(
    ("wrong", "why"),
    [
        (Calls(offset=float("nan")), "non-finite"),
        (Calls(scale=2.01), "from eager"),  # normwise 5e-3 > rtol 1e-3
    ],
    ids=["nan", "off"],
)
def test_disagreeing_compile_falls_back_to_eager(monkeypatch, caplog, wrong, why):
    eager = Calls()
    f = checked(monkeypatch, eager, wrong)
    x = torch.randn(3, 4)
    with caplog.at_level(logging.WARNING, logger="taming.compiling"):
        out = f(x)
    torch.testing.assert_close(out, 2 * x)  # eager's result, not the compiled one
    assert f.failed and why in caplog.text and "running f eagerly" in caplog.text
    n = wrong.n
    torch.testing.assert_close(f(x), 2 * x)
    assert wrong.n == n  # the compiled function is not called again


def test_small_float_differences_pass(monkeypatch):
    f = checked(monkeypatch, Calls(), Calls(scale=2.0 * (1 + 1e-6)))
    f(torch.randn(3, 4))
    assert not f.failed


def test_nested_outputs_and_shape_mismatch(monkeypatch):
    monkeypatch.setattr(compiling.torch, "compile", lambda fn, **kw: lambda x: (x, [x[:1]]))
    f = CheckedCompile(lambda x: (x, [x]), "g")
    x = torch.randn(3, 4)
    out = f(x)
    assert f.failed and out[1][0].shape == (3, 4)


CHILD = r"""
import json, logging, sys, torch
sys.path.insert(0, "tests")
from test_codec_fast import small_model
from test_gpt import cached_logits, make_gpt
from taming.autoencoder.inference import compile_first_stage

logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
out = {"torch": torch.__version__}
tiny = dict(ch_mult=[1], num_res_blocks=0, attn_resolutions=[], resolution=8)
eager, compiled = small_model(**tiny), small_model(**tiny)
compile_first_stage(compiled)
quant = torch.randn(2, 16, 8, 8, generator=torch.Generator().manual_seed(1))
with torch.inference_mode():
    y, ref = compiled.decode(quant), eager.decode(quant)
out["decoder_rel_err"] = ((y - ref).norm() / ref.norm()).item()
out["decoder_fell_back"] = compiled.decoder.forward.failed
gpt = make_gpt(block=16)
idx = torch.randint(0, 37, (2, 16), generator=torch.Generator().manual_seed(0))
chunks = [3] + [1] * 13
ref = cached_logits(gpt, idx, chunks)
gpt.compile_decode()
got = cached_logits(gpt, idx, chunks)
out["gpt_max_err"] = (got - ref).abs().max().item()
out["gpt_fell_back"] = gpt._compiled_step.failed
print(json.dumps(out))
"""


def _child(env: dict[str, str]) -> tuple[dict, str]:
    proc = subprocess.run(
        [sys.executable, "-c", CHILD], env=env, cwd=ROOT, capture_output=True, text=True,
        timeout=600,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1]), proc.stderr


@pytest.mark.slow  # two child processes that compile (~1 min)
def test_kernels_cached_under_another_isa_are_caught(tmp_path):
    """Compile natively, then again with AVX2 code against the same inductor cache: the
    second run's compiled decoder and GPT step go wrong (torch 2.13), the check falls back to
    eager code, and the results are still right."""
    if compiling.cpp_compiler() is None:
        pytest.skip("no C++ compiler for inductor's CPU backend")
    if "avx512f" not in _cpu_flags():
        pytest.skip("needs an AVX-512 CPU (native kernels other than the AVX2 ones)")
    env = {k: v for k, v in os.environ.items() if k != "ATEN_CPU_CAPABILITY"}
    env.update(PYTHONPATH=str(ROOT / "src"), TORCHINDUCTOR_CACHE_DIR=str(tmp_path / "inductor"))
    native, _ = _child(env)
    assert not native["decoder_fell_back"] and not native["gpt_fell_back"], native
    capped, log = _child({**env, "ATEN_CPU_CAPABILITY": "avx2"})
    for res in (native, capped):
        assert res["decoder_rel_err"] < 1e-5
        assert res["gpt_max_err"] < 1e-4
    if capped["torch"].startswith("2.13."):  # seen with this torch: the check is what saves it
        assert capped["decoder_fell_back"] and capped["gpt_fell_back"], capped
        assert "disagrees with eager code" in log
