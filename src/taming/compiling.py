"""`torch.compile` that checks its first result per input signature against eager code.

Compiled code can be wrong where eager code is right. One case seen here, with torch 2.13:
inductor's on-disk kernel cache (`TORCHINDUCTOR_CACHE_DIR`, by default under /tmp) is not
keyed by the vector ISA that `ATEN_CPU_CAPABILITY` selects. So kernels built in a run with
AVX-512 code were reused in a run capped at AVX2: the compiled VQGAN decoder and the GPT
decode step then returned NaN (tests/test_compiling.py reproduces this order). The other way
round, the compiled decoder crashed the process, which no check can catch. With a fresh cache
the AVX2 code is right. A wrong image is worse
than a slow one. So `CheckedCompile` runs each new input signature (tensor shapes, dtypes,
devices) both ways once. If the compiled result is not finite where eager's is, or is further
than `rtol` from it (normwise), it warns once and uses the eager function from then on. Later
calls with a checked signature run only the compiled code. A check costs one eager call per
signature; compiling that signature costs far more.

The check runs the function twice, so it is only for functions whose side effects repeat
harmlessly. The GPT step writes the new key/value into its cache slot, and the eager run then
writes that slot again, with eager's values.

Also `cpp_compiler()`: the C++ compiler that inductor's CPU backend would use.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

logger = logging.getLogger(__name__)

__all__ = ["CheckedCompile", "cpp_compiler"]


def cpp_compiler() -> str | None:
    """Path of the C++ compiler inductor would use on CPU (`$CXX`, g++, c++, clang++), or None."""
    names = [os.environ["CXX"]] if os.environ.get("CXX") else []
    for name in [*names, "g++", "c++", "clang++"]:
        path = shutil.which(name)
        if path is not None:
            return path
    return None


def _tensors(obj: Any) -> list[Tensor]:
    """The tensors in `obj` (nested tuples/lists/dicts), in order."""
    if isinstance(obj, Tensor):
        return [obj]
    if isinstance(obj, (tuple, list)):
        return [t for o in obj for t in _tensors(o)]
    if isinstance(obj, dict):
        return [t for o in obj.values() for t in _tensors(o)]
    return []


def _signature(args: tuple, kwargs: dict) -> tuple:
    return tuple((tuple(t.shape), t.dtype, t.device) for t in _tensors((args, kwargs)))


def _disagreement(out: Any, ref: Any, rtol: float) -> str | None:
    """Why `out` is not `ref` within `rtol` (normwise, per tensor), or None."""
    outs, refs = _tensors(out), _tensors(ref)
    if len(outs) != len(refs):
        return f"{len(outs)} tensors returned, eager returned {len(refs)}"
    for i, (a, b) in enumerate(zip(outs, refs)):
        if a.shape != b.shape:
            return f"output {i} has shape {tuple(a.shape)}, eager {tuple(b.shape)}"
        a64, b64 = a.detach().double(), b.detach().double()
        if not bool(torch.isfinite(a64).all()) and bool(torch.isfinite(b64).all()):
            return f"output {i} has {int((~torch.isfinite(a64)).sum())} non-finite values"
        err = (a64 - b64).norm() / b64.norm().clamp_min(1e-30)
        if not bool(err <= rtol):
            return f"output {i} is {float(err):.2e} from eager (normwise; allowed {rtol:.0e})"
    return None


class CheckedCompile:
    """`torch.compile(fn)`, checked against `fn` on the first call of each input signature.

    Args:
        fn: The eager function (a module's forward, a decode step).
        name: What to call it in the warning.
        rtol: Allowed normwise difference between compiled and eager outputs. The default is
            far above the ~1e-6 that reordered float32 sums give, and far below a wrong result.
        **compile_kwargs: Passed to `torch.compile`.
    """

    def __init__(
        self, fn: Callable[..., Any], name: str, rtol: float = 1e-3, **compile_kwargs: Any
    ) -> None:
        self.eager = fn
        self.compiled = torch.compile(fn, **compile_kwargs)
        self.name = name
        self.rtol = rtol
        self.checked: set[tuple] = set()
        self.failed = False

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self.failed:
            return self.eager(*args, **kwargs)
        key = _signature(args, kwargs)
        if key in self.checked:
            return self.compiled(*args, **kwargs)
        out = self.compiled(*args, **kwargs)
        ref = self.eager(*args, **kwargs)
        why = _disagreement(out, ref, self.rtol)
        if why is not None:
            logger.warning(
                "torch.compile'd %s disagrees with eager code on this machine (%s): "
                "running %s eagerly",
                self.name, why, self.name,
            )  # fmt: skip
            self.failed = True
            return ref
        self.checked.add(key)
        return out
