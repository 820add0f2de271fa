"""Shared helpers of the benchmarks: the CPU's name and features, alternating medians, peak RSS.

Every benchmark that compares ours with the original runs both in the same process, alternating
(the order flips every round, so load changes on a shared machine hit both), and reports
medians. Peak RSS is measured per side in a fresh child process that runs only that side (the
child prints `ru_maxrss`), so one side's allocations cannot inflate the other's figure.
"""

from __future__ import annotations

import getpass
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence

__all__ = [
    "ISA_CAPS",
    "alternate",
    "isa_env",
    "cpu_info",
    "loadavg_1m",
    "median",
    "paired_ratio",
    "peak_rss_mib",
    "print_rss_probe",
    "rss_mark",
    "workload_line",
]


def median(values: Sequence[float]) -> float:
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else 0.5 * (values[n // 2 - 1] + values[n // 2])


def loadavg_1m() -> float:
    return round(os.getloadavg()[0], 2)


# Environment that caps every kernel library torch uses at AVX2 (ATen's own vectorised kernels,
# oneDNN's convolutions and bf16 products, MKL's GEMMs, fbgemm's integer GEMMs), so that an
# AVX-512 host runs the kernels an AVX2-only CPU would (`run_all.py --isa avx2`). Each variable
# is read once when its library initialises: it must be set before `import torch`. It does not
# change the memory system, so it measures AVX2 kernels, not a whole AVX2 machine.
ISA_CAPS = {
    "avx2": {
        "ATEN_CPU_CAPABILITY": "avx2",
        "ONEDNN_MAX_CPU_ISA": "AVX2",
        "MKL_ENABLE_INSTRUCTIONS": "AVX2",
        "FBGEMM_ENABLE_INSTRUCTIONS": "AVX2",
    }
}


def isa_env(isa: str) -> dict[str, str]:
    """`os.environ` with the `ISA_CAPS[isa]` caps set (and those of other entries removed),
    and inductor's kernel cache moved to its own folder: with torch 2.13 the cache is not
    keyed by the ISA, and kernels built under one ISA, reused under another, returned NaN or
    crashed (see `taming.compiling`)."""
    env = dict(os.environ)
    for caps in ISA_CAPS.values():
        for key in caps:
            env.pop(key, None)
    env.update(ISA_CAPS[isa])
    base = env.get("TORCHINDUCTOR_CACHE_DIR") or os.path.join(
        tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}"
    )
    env["TORCHINDUCTOR_CACHE_DIR"] = f"{base}_{isa}"
    return env


def _capped_isa() -> str | None:
    """The ISA_CAPS entry this process runs under, if all of its variables are set."""
    for isa, env in ISA_CAPS.items():
        if all(os.environ.get(k) == v for k, v in env.items()):
            return isa
    return None


def cpu_info() -> dict[str, object]:
    """The CPU model, its widest vector ISA (AVX-512 / AVX2 / other) and native bf16 support.

    Under an `ISA_CAPS` cap the ISA reads e.g. "AVX2 kernels on an AVX-512 CPU" and native bf16
    is reported as absent (oneDNN's bf16 dot-product kernels are AVX-512 ones).
    """
    name, flags = platform.processor() or platform.machine(), set()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, value = line.partition(":")
                if key.strip() == "model name":
                    name = value.strip()
                elif key.strip() == "flags":
                    flags = set(value.split())
                    break
    except OSError:
        pass
    if "avx512f" in flags:
        isa = "AVX-512"
    elif "avx2" in flags:
        isa = "AVX2"
    else:
        isa = platform.machine()
    native_bf16 = bool(flags & {"avx512_bf16", "amx_bf16"})
    capped = _capped_isa()
    if capped is not None:
        isa, native_bf16 = f"{capped.upper()} kernels on an {isa} CPU", False
    return {
        "cpu": name,
        "isa": isa,
        "native_bf16": native_bf16,
        "cores": os.cpu_count(),
    }


def alternate(
    runners: Mapping[str, Callable[[], object]], rounds: int, warmup: int = 1
) -> dict[str, list[float]]:
    """Wall seconds per call of each runner over `rounds` rounds, the order flipping each round."""
    names = list(runners)
    for _ in range(warmup):
        for name in names:
            runners[name]()
    times: dict[str, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - t0)
    return times


def paired_ratio(slow: Sequence[float], fast: Sequence[float]) -> float:
    """Median over rounds of slow time / fast time (robust to load that hits a whole round)."""
    return median([s / f for s, f in zip(slow, fast)])


def _status_kib(field: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def rss_mark() -> int | None:
    """Start of a probe's workload: resets the kernel's peak-RSS mark (Linux), returns RSS KiB."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # resets VmHWM to the current RSS
    except OSError:
        return None
    return _status_kib("VmRSS")


def print_rss_probe(mark: int | None = None) -> None:
    """Last line of a probe child, as JSON: its peak RSS in MiB and, given `rss_mark()`'s
    value, how far the workload itself raised RSS above that mark."""
    rss_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux
    out = {"peak_rss_mib": round(rss_kib / 1024, 1)}
    hwm = _status_kib("VmHWM")
    if mark is not None and hwm is not None:
        out["workload_rss_mib"] = round((hwm - mark) / 1024, 1)
    print(json.dumps(out))


def peak_rss_mib(script: str, args: Sequence[str], timeout: float = 900) -> dict | None:
    """Run `python script *args` (a probe that ends with `print_rss_probe`); its JSON."""
    paths = [os.path.dirname(os.path.abspath(script)), os.environ.get("PYTHONPATH", "")]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in paths if p))
    proc = subprocess.run(
        [sys.executable, script, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        print(f"peak-RSS probe {' '.join(args)} failed: {tail[0]}", file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def workload_line(
    bench: str,
    workload: str,
    unit: str,
    ours: float,
    original: float | None,
    ratio: float | None,
    rss_ours: dict | None,
    rss_original: dict | None,
    **extra: object,
) -> str:
    """One JSON line per workload: ours / the original / their ratio / peak RSS of both
    (`peak_rss_mib_*`: the probe process's peak; `workload_rss_mib_*`: the part of it that the
    workload added above the RSS after building the model)."""
    line: dict[str, object] = {
        "bench": bench,
        "workload": workload,
        "unit": unit,
        "ours": ours,
        "original": original,
        "ratio": ratio,
    }
    for side, rss in (("ours", rss_ours), ("original", rss_original)):
        line[f"peak_rss_mib_{side}"] = rss and rss.get("peak_rss_mib")
        line[f"workload_rss_mib_{side}"] = rss and rss.get("workload_rss_mib")
    line.update(extra)
    return json.dumps(line)
