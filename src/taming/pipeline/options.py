"""The settings of one `taming sample` run: `SampleOptions`, their checks, and the folder they
name.

Output layout as the original `scripts/sample_fast.py`:
`<out>/samples/top_k_{k}_temp_{t:.2f}_top_p_{p}[_cfg_{s}][_rejection_{a}][_{bf16}][_{H}x{W}]/
{global_step}/[cond_<name>/ | complete_<name>/ | from_<split>/][{class}/]{count:06}.png`. A run
never writes into a folder that already holds files (`overwrite=True` allows it), and its
`summary.json` records every setting.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taming.pipeline.errors import SampleError
from taming.sampling.config import SamplingConfig

__all__ = [
    "SampleOptions",
    "SampleResult",
    "check_options",
    "parse_classes",
    "parse_size",
    "settings_name",
]


def parse_classes(spec: str | None, n_classes: int) -> list[int]:
    """`"imagenet"`/`"all"`/None -> all classes; `"0,3,7"` -> `[0, 3, 7]` (checked)."""
    if spec is None or spec.strip().lower() in ("imagenet", "all", ""):
        return list(range(n_classes))
    try:
        ids = [int(s) for s in spec.split(",") if s.strip()]
    except ValueError:
        raise SampleError(
            f"--classes: expected 'imagenet' or ids like 0,3,7, got '{spec}'"
        ) from None
    bad = [i for i in ids if not 0 <= i < n_classes]
    if bad:
        raise SampleError(f"--classes: class id {bad[0]} is out of range [0, {n_classes})")
    if not ids:
        raise SampleError("--classes: no class ids given")
    return ids


def parse_size(spec: str | None) -> tuple[int, int] | None:
    """`"256"` -> (256, 256); `"512,1024"` (H,W) -> (512, 1024)."""
    if spec is None:
        return None
    try:
        parts = [int(s) for s in spec.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'") from None
    if len(parts) == 1:
        parts = parts * 2
    if len(parts) != 2 or min(parts) <= 0:
        raise SampleError(f"--size: expected H,W (pixels), got '{spec}'")
    return parts[0], parts[1]


@dataclass
class SampleOptions:
    """Options of `taming sample` (see `taming.commands.sample`)."""

    resume: str
    ckpt: str | None = None
    outdir: str | None = None
    base: list[str] = field(default_factory=list)
    overrides: list[str] = field(default_factory=list)
    num_samples: int | None = None
    batch_size: int = 25
    top_k: int = 250
    temperature: float = 1.0
    top_p: float = 1.0
    seed: int = 0
    classes: str | None = None
    cfg_scale: float = 1.0
    condition: str | None = None
    size: str | None = None
    complete: str | None = None
    keep_top: float | None = None
    mask: str | None = None
    rejection: str | None = None
    acceptance: float = 0.1
    from_data: str | None = None  # a split of the run config's data section ("validation")
    grid: bool = True
    grid_max: int = 64
    unsafe: bool = False
    device: str | None = None
    use_cache: bool = True
    decode_weights: str | None = None  # "bf16"/"fp16"/"int8"/"w8a8": low-precision decode
    compile: bool = False  # torch.compile the GPT's decode step and the VQGAN (opt-in)
    first_stage_dtype: str | None = None  # "bf16": the VQGAN decoder in bf16 (opt-in)
    overwrite: bool = False
    max_tokens: int = 65536  # tokens per image
    max_decode_gib: float = 16.0  # estimated decoder memory per batch
    progress: bool = True


@dataclass
class SampleResult:
    """Where `run_sampling` wrote what."""

    folder: Path
    files: list[Path] = field(default_factory=list)
    grids: list[Path] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)


def _finite(name: str, value: float) -> None:
    if not math.isfinite(float(value)):
        raise SampleError(f"{name} must be a finite number, got {value}")


def check_options(opts: SampleOptions) -> tuple[SamplingConfig, tuple[int, int] | None]:
    """Check the options that need no model: `(sampling config, size or None)`."""
    _finite("--temperature", opts.temperature)
    _finite("--top_p", opts.top_p)
    _finite("--cfg-scale", opts.cfg_scale)
    _finite("--acceptance", opts.acceptance)
    if opts.temperature <= 0:
        raise SampleError(f"--temperature must be > 0, got {opts.temperature}")
    if not 0.0 < opts.top_p <= 1.0:
        raise SampleError(f"--top_p must be in (0, 1], got {opts.top_p}")
    if opts.top_k < 0:
        raise SampleError(f"--top_k must be >= 0 (0: off), got {opts.top_k}")
    if opts.batch_size < 1:
        raise SampleError(f"--batch_size must be >= 1, got {opts.batch_size}")
    if opts.num_samples is not None and opts.num_samples < 1:
        raise SampleError(f"-n/--num_samples must be >= 1, got {opts.num_samples}")
    if opts.keep_top is not None:
        _finite("--keep-top", opts.keep_top)
        if not 0.0 <= opts.keep_top <= 1.0:
            raise SampleError(f"--keep-top must be a fraction in [0, 1], got {opts.keep_top}")
    if opts.rejection is not None and not 0.0 < opts.acceptance <= 1.0:
        raise SampleError(f"--acceptance must be in (0, 1], got {opts.acceptance}")
    if opts.mask is not None and opts.complete is None:
        raise SampleError("--mask needs --complete IMAGE")
    if opts.keep_top is not None and opts.complete is None:
        raise SampleError("--keep-top needs --complete IMAGE")
    if opts.mask is not None and opts.keep_top is not None:
        raise SampleError("give either --keep-top or --mask, not both")
    if opts.rejection is not None and opts.complete is not None:
        raise SampleError("--rejection samples from scratch; it cannot be combined with --complete")
    if opts.from_data is not None and (opts.complete or opts.condition or opts.rejection):
        raise SampleError(
            "--from-data takes its conditions from the dataset; drop "
            "--complete/--condition/--rejection"
        )
    if opts.decode_weights is not None and not opts.use_cache:
        raise SampleError("--decode-weights applies to cached sampling; drop --no-cache")
    for path, flag in (
        (opts.condition, "--condition"),
        (opts.complete, "--complete"),
        (opts.mask, "--mask"),
    ):
        if path is not None and not Path(path).is_file():
            raise FileNotFoundError(f"{flag}: file not found: {path}")
    config = SamplingConfig(
        temperature=opts.temperature,
        top_k=opts.top_k or None,
        top_p=opts.top_p,
        cfg_scale=opts.cfg_scale,
        use_cache=opts.use_cache,
    )
    return config, parse_size(opts.size)


def _fmt(x: float) -> str:
    return f"{x:g}"


def settings_name(opts: SampleOptions, size: tuple[int, int] | None) -> str:
    """The settings folder: `sample_fast.py`'s name plus what else differs from its defaults."""
    name = f"top_k_{opts.top_k}_temp_{opts.temperature:.2f}_top_p_{opts.top_p}"
    if opts.cfg_scale != 1.0:
        name += f"_cfg_{_fmt(opts.cfg_scale)}"
    if opts.rejection is not None:
        name += f"_rejection_{_fmt(opts.acceptance)}"
    if opts.decode_weights is not None:
        name += f"_{opts.decode_weights}"
    if opts.first_stage_dtype not in (None, "fp32"):
        name += f"_first_stage_{opts.first_stage_dtype}"
    if size is not None:
        name += f"_{size[0]}x{size[1]}"
    return name


def fresh_folder(folder: Path, overwrite: bool) -> Path:
    """Create `folder`; refuse one that already holds files unless `overwrite`."""
    if folder.is_dir() and any(folder.iterdir()) and not overwrite:
        raise SampleError(
            f"{folder} already holds samples; choose another --outdir, other settings, or "
            "pass --overwrite"
        )
    folder.mkdir(parents=True, exist_ok=True)
    return folder
