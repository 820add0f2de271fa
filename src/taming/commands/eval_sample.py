"""`taming eval sample`: sample from a transformer run, then score the samples.

    taming eval sample --model logs/<run> -n 50 --reference val_images/ --kid
    taming eval sample --model logs/<cin run> -n 50 --rejection scorer.py:score --acceptance 0.1

As the seed's model table: `-n` samples (per class for class-conditional models, all classes by
default, each class seeded on its own), written to `<outdir>/images/` (`{class:04}_{i:06}.png`)
with a `grid.png` beside them; then IS on the samples (when there are at least `--isc-splits`)
and FID (KID with `--kid`) against `--reference`. With `--rejection` the acceptance rate is
reported too (the paper's cIN numbers). `metrics.json` holds the results.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

from taming.commands.eval import (
    _check_inputs,
    _default_outdir,
    _emit,
    _fail_fast,
    _fmt_metrics,
    _metric_flags,
)


def _sampling_api() -> Any:
    """The image-level sampling API (`sample_images`, `rejection_sample`, `load_scorer`),
    imported when the command runs (the parser imports no torch)."""
    import taming.pipeline

    return taming.pipeline


def run_sample(args: argparse.Namespace) -> int:
    from taming.config import ConfigError
    from taming.metrics.inception_weights import resolve_inception_weights

    if not Path(args.model).exists():
        raise FileNotFoundError(f"--model: no such run folder or config: {args.model}")
    if args.reference is not None:
        _check_inputs(args.reference)
    if args.kid and args.reference is None:
        raise ConfigError("--kid needs --reference")
    weights = resolve_inception_weights(args.inception_weights)  # IS at least: fail fast
    import torch

    import taming
    from taming.images import make_grid, save_images
    from taming.metrics.fidelity import calculate_metrics
    from taming.metrics.sources import TensorSource

    api = _sampling_api()
    scorer = api.load_scorer(args.rejection) if args.rejection else None
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    model = taming.load(args.model, unsafe=args.unsafe, device=device)
    if not hasattr(model, "first_stage_model") or not hasattr(model, "transformer"):
        raise ConfigError(f"--model {args.model}: a {type(model).__name__}, not a transformer run")
    n_classes = model.n_classes
    classes: list[int | None] = [None]
    if n_classes is not None:
        classes = list(api.parse_classes(args.classes, int(n_classes)))
    try:
        config = api.SamplingConfig(
            top_k=args.top_k or None,
            top_p=args.top_p if args.top_p < 1 else None,
            temperature=args.temperature,
            cfg_scale=args.cfg_scale,
            use_cache=not args.no_cache_kv,
        )
    except ValueError as e:
        raise ConfigError(str(e)) from None
    settings = f"top_k_{args.top_k}_temp_{args.temperature:.2f}_top_p_{args.top_p}"
    if args.rejection:
        settings += f"_rejection_{args.acceptance:g}"
    outdir = (
        Path(args.outdir) if args.outdir else (_default_outdir(args.model, settings, "samples"))
    )
    t0 = time.perf_counter()
    images, rejection = [], {}
    for c in classes:
        gen = torch.Generator(device).manual_seed(api.class_seed(args.seed, c))
        if scorer is not None:
            x, _, _, info = api.rejection_sample(
                model,
                args.num_samples,
                scorer,
                args.acceptance,
                cond=c,
                config=config,
                batch_size=args.sample_batch,
                progress=not args.no_progress,
                generator=gen,
            )
            rejection["all" if c is None else str(c)] = info
        else:
            x = api.sample_images(
                model,
                args.num_samples,
                cond=c,
                config=config,
                generator=gen,
                batch_size=args.sample_batch,
                progress=not args.no_progress,
            )
        prefix = "" if c is None else f"{c:04}_"
        save_images(x, outdir / "images", pattern=prefix + "{:06}.png")
        images.append(x)
    samples = torch.cat(images)
    make_grid(samples[:64]).save(outdir / "grid.png")
    seconds = time.perf_counter() - t0
    result: dict[str, Any] = {"images": int(samples.shape[0]), "sampling_seconds": seconds}
    if rejection:
        cand = sum(i["candidates"] for i in rejection.values())
        kept = sum(i["kept"] for i in rejection.values())
        result["acceptance_rate"] = kept / cand
        result["rejection"] = rejection
    isc = args.isc or samples.shape[0] >= args.isc_splits
    metrics: dict[str, Any] = {}
    if isc or args.reference is not None:
        metrics = calculate_metrics(
            TensorSource(samples, name=outdir.name),
            args.reference,
            fid=args.reference is not None,
            kid=args.kid,
            isc=isc,
            inception_weights=weights,
            device=args.device,
            batch_size=args.batch_size,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            isc_splits=args.isc_splits,
            seed=args.metric_seed,
            cache=not args.no_cache,
            progress=not args.no_progress,
        )
    result.update(metrics)
    result["outdir"] = str(outdir)
    (outdir / "metrics.json").write_text(json.dumps(result, indent=2, default=float) + "\n")
    lines = [f"{result['images']} samples in {seconds:.1f} s: {outdir}", *_fmt_metrics(metrics)]
    if rejection:
        lines.append(f"acceptance rate {result['acceptance_rate']:.3f}")
    _emit(result, args.json, lines)
    return 0


def add_parser(esub: argparse._SubParsersAction) -> None:
    s = esub.add_parser("sample", help="sample from a transformer run, then score the samples")
    s.add_argument("--model", required=True, metavar="RUN", help="transformer run folder")
    s.add_argument(
        "-n",
        "--num_samples",
        type=int,
        default=50,
        help="samples (per class for class-conditional models; default 50)",
    )
    s.add_argument(
        "--reference", default=None, help="image folder, dataset config or .npz for FID (and KID)"
    )
    s.add_argument("-k", "--top_k", type=int, default=250, help="top-k (default 250; 0: off)")
    s.add_argument("-t", "--temperature", type=float, default=1.0, help="temperature")
    s.add_argument("-p", "--top_p", type=float, default=1.0, help="nucleus filter (default 1)")
    s.add_argument("--classes", default=None, help="class ids like 0,3,7 (default: all)")
    s.add_argument("--cfg-scale", type=float, default=1.0, help="classifier-free guidance")
    s.add_argument(
        "--rejection",
        default=None,
        metavar="MODULE:FUNCTION",
        help="scorer; keeps the best --acceptance fraction (reports the rate)",
    )
    s.add_argument("--acceptance", type=float, default=0.1, help="rejection acceptance rate")
    s.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    s.add_argument("--metric-seed", type=int, default=2020, help="KID/IS seed (default 2020)")
    s.add_argument(
        "--sample-batch-size",
        dest="sample_batch",
        type=int,
        default=25,
        help="samples per batch (default 25)",
    )
    s.add_argument(
        "--no-kv-cache",
        dest="no_cache_kv",
        action="store_true",
        help="recompute every step (the original's way)",
    )
    s.add_argument(
        "-o",
        "--outdir",
        default=None,
        help="sample folder (default: <run>/eval/samples_<settings>)",
    )
    s.add_argument("--unsafe", action="store_true", help="allow checkpoints that may run code")
    _metric_flags(s)
    s.set_defaults(func=_fail_fast(run_sample))
