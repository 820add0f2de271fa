"""Opt-in faster first-stage inference: bf16 weights and `torch.compile` (CPU or GPU).

Both change only speed and rounding, never the model's parameters' names or the fp32 default:

- `set_first_stage_dtype(model, "bf16")` casts every VQGAN `Encoder`/`Decoder` inside `model`
  (a VQModel, or a Net2NetTransformer's first and cond stages) to bfloat16. They then compute
  in bf16 and hand fp32 back; `quant_conv`, `post_quant_conv` and the quantizer stay fp32, so the
  nearest-code search is unchanged for a given latent. On CPUs without native bf16
  instructions (AVX512_BF16 / AMX) bf16 is emulated and slower than fp32: the model then stays
  fp32 and a warning says so (`force=True` casts anyway, e.g. for accuracy tests).
- `compile_first_stage(model)` compiles each `Encoder`/`Decoder` in place with
  `torch.compile` (inductor; `nn.Module.compile`, so state-dict keys do not change). The first
  call of each input shape compiles (tens of seconds on a small CPU); without a C++ compiler
  (inductor's CPU backend needs one) it logs why and leaves the model eager.
"""

from __future__ import annotations

import logging

import torch
from torch import nn

from taming.autoencoder.encoder_decoder import Decoder, Encoder
from taming.compiling import CheckedCompile, cpp_compiler

logger = logging.getLogger(__name__)

__all__ = [
    "DTYPES",
    "compile_first_stage",
    "cpp_compiler",
    "native_bf16",
    "prepare_first_stage",
    "set_first_stage_dtype",
]

DTYPES = {None: torch.float32, "fp32": torch.float32, "bf16": torch.bfloat16}


def native_bf16() -> bool:
    """Whether this CPU has bf16 arithmetic instructions (AVX512_BF16 or AMX)."""
    cpu = getattr(torch._C, "_cpu", None)
    for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported"):
        probe = getattr(cpu, name, None)
        try:
            if probe is not None and probe():
                return True
        except RuntimeError:  # a private probe may be missing its kernel on some builds
            pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return bool({"avx512_bf16", "amx_bf16"} & set(line.split()))
    except OSError:
        pass
    return False


def _codec_modules(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (Encoder, Decoder))]


def set_first_stage_dtype(model: nn.Module, dtype: str | None, force: bool = False) -> str:
    """Run the model's VQGAN encoders/decoders in `dtype` ("bf16", or "fp32"/None); in place.

    Returns the dtype actually used ("bf16" or "fp32"). Meant for inference: train in fp32
    (or with `--precision bf16-mixed`, which keeps fp32 master weights).
    """
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of 'fp32', 'bf16' (got {dtype!r})")
    modules = _codec_modules(model)
    if not modules:
        raise ValueError(f"{type(model).__name__} has no VQGAN Encoder/Decoder to cast")
    used = "fp32" if dtype in (None, "fp32") else dtype
    on_cpu = all(p.device.type == "cpu" for m in modules for p in m.parameters())
    if used == "bf16" and on_cpu and not native_bf16() and not force:
        logger.warning(
            "this CPU has no native bf16 instructions (AVX512_BF16/AMX): bf16 would be "
            "emulated and slower than fp32, so the first stage stays fp32"
        )
        used = "fp32"
    for m in modules:
        m.to(DTYPES[used])
    logger.info("first stage (%d encoder/decoder modules) runs in %s", len(modules), used)
    return used


def compile_first_stage(model: nn.Module, **compile_kwargs) -> bool:
    """`torch.compile` every VQGAN encoder/decoder inside `model` in place; True if done.

    Nothing happens (False, with a warning) where inductor cannot build kernels: on CPU
    without a C++ compiler. The first call per input shape pays the compile time, and also
    runs the module eagerly once to check the compiled result (`compiling.CheckedCompile`:
    where they disagree, the module runs eagerly from then on, with a warning). State-dict
    keys do not change (the compiled function replaces the instance's `forward`).
    """
    modules = _codec_modules(model)
    if not modules:
        raise ValueError(f"{type(model).__name__} has no VQGAN Encoder/Decoder to compile")
    on_cpu = all(p.device.type == "cpu" for m in modules for p in m.parameters())
    if on_cpu and cpp_compiler() is None:
        logger.warning("no C++ compiler found (g++/c++/clang++, or $CXX): --compile skipped")
        return False
    for m in modules:
        m.forward = CheckedCompile(m.forward, f"VQGAN {type(m).__name__}", **compile_kwargs)
    logger.info("compiled %d encoder/decoder modules (first call per shape compiles)", len(modules))
    return True


def prepare_first_stage(
    model: nn.Module, dtype: str | None = None, compile: bool = False
) -> nn.Module:
    """`set_first_stage_dtype` and/or `compile_first_stage` as asked (what `taming.load`'s and
    the commands' `dtype`/`--dtype` and `compile`/`--compile` do); returns `model`."""
    if dtype not in (None, "fp32"):
        set_first_stage_dtype(model, dtype)
    if compile:
        compile_first_stage(model)
    return model
