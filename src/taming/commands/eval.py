"""`taming eval`: FID / KID / IS as torch-fidelity computes them, reconstruction metrics.

    taming eval fid samples/ reference/ --kid --isc          # folders, a dataset config, or .npz
    taming eval fid samples/ imagenet_val_stats.npz --json   # last line: a JSON object
    taming eval recon --model logs/<vqgan run> --data val_images/ --size 256
    taming eval sample --model logs/<transformer run> -n 50 --reference val_images/

The Inception weights (`weights-inception-2015-12-05-6726825d.pth` of torch-fidelity or
`pt_inception-2015-12-05-6726825d.pth` of pytorch-fid) are never downloaded: pass
`--inception-weights PATH` or put the file in $TAMING_HOME (~/.cache/taming) or
~/.cache/torch/hub/checkpoints. KID (100 subsets of 1000) and IS (10 splits) use seed 2020
and torch-fidelity's draws, so the numbers are torch-fidelity's.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)


def _fail_fast(func):
    """Report missing Inception weights here, as the CLI reports user errors (one line,
    exit 2), without the CLI's error handling importing torch first: under a second."""

    def run(args: argparse.Namespace) -> int:
        from taming.metrics.inception_weights import InceptionWeightsNotFoundError

        try:
            return func(args)
        except InceptionWeightsNotFoundError as e:
            if getattr(args, "traceback", False):
                raise
            print(f"taming eval: error: {e}", file=sys.stderr)
            return 2

    return run


# -- shared options ----------------------------------------------------------------------------


def _metric_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="FID Inception weights file (default: $TAMING_HOME, torch hub cache)",
    )
    p.add_argument("--kid", action="store_true", help="also KID (needs images on both sides)")
    p.add_argument("--isc", action="store_true", help="also the Inception Score")
    p.add_argument(
        "--kid-subsets", type=int, default=100, metavar="N", help="KID subsets (default 100)"
    )
    p.add_argument(
        "--kid-subset-size",
        type=int,
        default=1000,
        metavar="N",
        help="images per KID subset (default 1000)",
    )
    p.add_argument("--isc-splits", type=int, default=10, metavar="N", help="IS splits (default 10)")
    p.add_argument(
        "--batch-size",
        type=int,
        default=32,
        metavar="N",
        help="images per Inception batch (default 32)",
    )
    p.add_argument("--no-cache", action="store_true", help="do not read or write feature caches")
    p.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")


def _needs_images(spec: str) -> bool:
    return Path(spec).suffix.lower() != ".npz"


def _check_inputs(*specs: str) -> None:
    for spec in specs:
        if not Path(spec).exists():
            raise FileNotFoundError(f"no such image folder, dataset config or .npz: {spec}")


def _emit(result: dict[str, Any], as_json: bool, lines: list[str]) -> None:
    for line in lines:
        print(line)
    if as_json:
        print(json.dumps(result, default=float))


def _fmt_metrics(m: dict[str, Any]) -> list[str]:
    out = []
    if "fid" in m:
        out.append(f"FID: {m['fid']:.6g}")
    if "kid_mean" in m:
        out.append(f"KID: {m['kid_mean']:.6g} +- {m['kid_std']:.6g}")
    if "isc_mean" in m:
        out.append(f"IS: {m['isc_mean']:.6g} +- {m['isc_std']:.6g}")
    return out


# -- taming eval fid ---------------------------------------------------------------------------


def run_fid(args: argparse.Namespace) -> int:
    from taming.metrics.inception_weights import resolve_inception_weights

    _check_inputs(args.generated, args.reference)
    if _needs_images(args.generated) or _needs_images(args.reference):
        weights = resolve_inception_weights(args.inception_weights)  # fails fast: no torch yet
    else:
        weights = args.inception_weights
    from taming.metrics.fidelity import calculate_metrics

    m = calculate_metrics(
        args.generated,
        args.reference,
        fid=True,
        kid=args.kid,
        isc=args.isc,
        inception_weights=weights,
        device=args.device,
        batch_size=args.batch_size,
        kid_subsets=args.kid_subsets,
        kid_subset_size=args.kid_subset_size,
        isc_splits=args.isc_splits,
        seed=args.seed,
        cache=not args.no_cache,
        recursive=args.recursive,
        progress=not args.no_progress,
    )
    _emit(m, args.json, _fmt_metrics(m))
    return 0


# -- taming eval recon -------------------------------------------------------------------------


def _optional_extractor(path: str | None, device: str | None, batch_size: int) -> Any:
    """An extractor from an explicit path (must exist), else from the usual places if there."""
    from taming.metrics.inception_weights import (
        InceptionWeightsNotFoundError,
        resolve_inception_weights,
    )

    try:
        weights = resolve_inception_weights(path)
    except InceptionWeightsNotFoundError as e:
        if path is not None:
            raise
        logger.info("rFID skipped: %s", e)
        return None
    from taming.metrics.extractor import InceptionExtractor

    return InceptionExtractor(weights, device=device, batch_size=batch_size)


def _optional_lpips() -> Any:
    from taming.losses.lpips import LPIPS
    from taming.losses.weights import WeightsNotFoundError

    try:
        return LPIPS()
    except WeightsNotFoundError as e:
        logger.info("LPIPS skipped: %s", str(e).splitlines()[0])
        return None


def _default_outdir(model_spec: str, name: str, kind: str) -> Path:
    """`<run>/eval/<kind>_<name>` (or `./eval/...` when the model is a config file)."""
    base = Path(model_spec) if Path(model_spec).is_dir() else Path(".")
    return base / "eval" / f"{kind}_{name or 'data'}"


def _data_name(data: str) -> str:
    p = Path(data)
    return p.stem if p.is_file() else p.resolve().name


def run_recon(args: argparse.Namespace) -> int:
    from taming.metrics.inception_weights import resolve_inception_weights

    if not Path(args.model).exists():
        raise FileNotFoundError(f"--model: no such run folder or config: {args.model}")
    if not Path(args.data).exists():
        raise FileNotFoundError(f"--data: no such image folder or dataset config: {args.data}")
    if args.inception_weights is not None:
        resolve_inception_weights(args.inception_weights)  # fails fast, before any loading
    import taming
    from taming.metrics.reconstruction import (
        evaluate_reconstruction,
        first_stage,
        write_reconstruction_report,
    )

    device = args.device or ("cuda" if _cuda() else "cpu")
    model = first_stage(
        taming.load(
            args.model, unsafe=args.unsafe, device=device, dtype=args.dtype, compile=args.compile
        )
    )
    extractor = _optional_extractor(args.inception_weights, device, args.batch_size)
    lpips = _optional_lpips()
    result = evaluate_reconstruction(
        model,
        args.data,
        size=args.size,
        batch_size=args.batch_size,
        extractor=extractor,
        lpips=lpips,
        worst=args.worst,
        device=device,
        progress=not args.no_progress,
    )
    outdir = (
        Path(args.outdir)
        if args.outdir
        else _default_outdir(args.model, _data_name(args.data), "recon")
    )
    files = write_reconstruction_report(result, outdir)
    r = result.report
    lines = [f"{r['images']} images at {r['size'][0]}x{r['size'][1]}: {outdir}"]
    lines += [f"  {k}: {r[k]:.6g}" for k in ("rfid", "psnr", "ssim", "lpips") if k in r]
    lines.append(
        f"  codebook usage {r['codebook_usage']:.4f}, perplexity {r['perplexity']:.2f}, "
        f"dead codes {r['dead_codes']} of {r['n_codes']}"
    )
    lines += [f"  {name}: {path}" for name, path in files.items()]
    _emit({**r, "outdir": str(outdir)}, args.json, lines)
    return 0


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


# -- parsers -----------------------------------------------------------------------------------


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="FID/KID/IS (torch-fidelity's numbers), reconstruction metrics",
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.set_defaults(func=lambda args: p.print_help() or 0)
    esub = p.add_subparsers(dest="eval_command", metavar="WHAT")

    f = esub.add_parser("fid", help="FID (KID, IS) between two image sets")
    f.add_argument("generated", help="image folder or dataset config (IS is computed on it)")
    f.add_argument("reference", help="image folder, dataset config, or .npz with mu, sigma")
    _metric_flags(f)
    f.add_argument("--seed", type=int, default=2020, help="KID/IS seed (default 2020)")
    f.add_argument("--recursive", action="store_true", help="list folders recursively")
    f.set_defaults(func=_fail_fast(run_fid))

    r = esub.add_parser("recon", help="rFID, PSNR, SSIM, LPIPS and codebook use of a first stage")
    r.add_argument(
        "--model",
        required=True,
        metavar="RUN_OR_CONFIG",
        help="first stage (or transformer) run folder or config",
    )
    r.add_argument(
        "--data",
        required=True,
        metavar="FOLDER_OR_CONFIG",
        help="image folder, image list, or dataset config",
    )
    r.add_argument(
        "--size", type=int, default=None, help="image side (default: the model's resolution)"
    )
    r.add_argument(
        "--inception-weights",
        default=None,
        metavar="PATH",
        help="FID Inception weights for rFID (default: the usual places, if there)",
    )
    r.add_argument(
        "-o", "--outdir", default=None, help="report folder (default: <run>/eval/recon_<data>)"
    )
    r.add_argument("--batch-size", type=int, default=8, help="images per batch (default 8)")
    r.add_argument("--worst", type=int, default=16, help="worst reconstructions in the grid")
    r.add_argument("--unsafe", action="store_true", help="allow checkpoints that may run code")
    r.add_argument(
        "--dtype", choices=["fp32", "bf16"], default="fp32", help="opt-in: bf16 first stage"
    )
    r.add_argument("--compile", action="store_true", help="opt-in: torch.compile the first stage")
    r.add_argument("--json", action="store_true", help="print a JSON object as the last line")
    r.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.set_defaults(func=_fail_fast(run_recon))

    from taming.commands.eval_sample import add_parser as add_sample_parser

    add_sample_parser(esub)
