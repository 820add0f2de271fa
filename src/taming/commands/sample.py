"""`taming sample`: images from a trained transformer (the original `scripts/sample_fast.py`).

    taming sample -r logs/<run> -n 50 -k 600 -p 0.92            # unconditional or all classes
    taming sample -r logs/<cin run> --classes 0,3,7 -n 8        # 8 per class
    taming sample -r logs/<cin run> --classes 1 --rejection scorer.py:score --acceptance 0.1
    taming sample -r logs/<run> --size 512,1024                 # larger: sliding window
    taming sample -r logs/<seg run> --condition labels.png      # segmentation / depth map
    taming sample -r logs/<run> --complete photo.png --keep-top 0.5  # at the training size
    taming sample -r logs/<seg run> --from-data validation -n 8  # conditions from the dataset

Output (as `sample_fast.py`): `<outdir or run>/samples/top_k_{k}_temp_{t:.2f}_top_p_{p}/
{global_step}/[{class}/]{count:06}.png`, a `grid.png` per folder and `summary.json` (every
setting, the size included). Conditioned, completed and dataset samples go to a
`cond_<name>/`, `complete_<name>/` or `from_<split>/` subfolder; guidance, rejection and
`--size` add `_cfg_{s}` / `_rejection_{a}` / `_{H}x{W}` to the settings folder. A folder that
already holds samples is never written over (`--overwrite` allows it). The same `--seed` gives
the same images (per class, whichever other classes are sampled). Before sampling, the token
count, the decode memory and a time estimate are logged; sizes past `--max-tokens` /
`--max-decode-gib` are refused with the estimate.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "sample",
        help="sample images from a trained transformer (sample_fast.py flags)",
        description=__doc__.split("\n\n")[0] if __doc__ else None,
        epilog=__doc__.split("\n\n", 1)[1] if __doc__ else None,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument(
        "-r",
        "--resume",
        required=True,
        help="run or release folder, a checkpoint inside one, or a YAML config",
    )
    p.add_argument("--ckpt", default=None, help="checkpoint to load (default: the run's last.ckpt)")
    p.add_argument("-o", "--outdir", default=None, help="output root (default: the run folder)")
    p.add_argument(
        "-b",
        "--base",
        action="append",
        default=[],
        metavar="config.yaml",
        help="extra config to merge (repeatable)",
    )
    p.add_argument(
        "-n",
        "--num_samples",
        type=int,
        default=None,
        help="samples (per class; default 50, or 4 with --condition/--complete)",
    )
    p.add_argument("--batch_size", type=int, default=25, help="images per batch (default 25)")
    p.add_argument(
        "-k", "--top_k", type=int, default=250, help="top-k filter (default 250; 0: off)"
    )
    p.add_argument("-t", "--temperature", type=float, default=1.0, help="temperature (default 1.0)")
    p.add_argument(
        "-p",
        "--top_p",
        type=float,
        default=1.0,
        help="nucleus filter (default 1.0), also without -k",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument(
        "--classes",
        default=None,
        help="class-conditional models: 'imagenet' (all, default) or ids like 0,3,7",
    )
    p.add_argument(
        "--cfg-scale",
        type=float,
        default=1.0,
        help="classifier-free guidance scale (default 1: off; models trained with cond_drop_prob)",
    )
    p.add_argument(
        "--condition",
        default=None,
        metavar="PATH",
        help="segmentation label PNG, depth PNG (RGBA-float or gray), RGB image, or layout tokens",
    )
    p.add_argument(
        "--size",
        default=None,
        metavar="H,W",
        help="image size in pixels, multiples of f (default: the condition's or training size)",
    )
    p.add_argument("--complete", default=None, metavar="IMAGE", help="complete this image")
    p.add_argument(
        "--keep-top",
        type=float,
        default=None,
        metavar="FRACTION",
        help="--complete: keep this fraction of the tokens, top first (default 0.5)",
    )
    p.add_argument(
        "--mask", default=None, metavar="MASK.png", help="--complete: white = keep (any size)"
    )
    p.add_argument(
        "--rejection",
        default=None,
        metavar="MODULE:FUNCTION",
        help="scorer fn(images in [-1,1], class_ids or None) -> scores; keeps the best",
    )
    p.add_argument(
        "--acceptance",
        type=float,
        default=0.1,
        help="--rejection: fraction of candidates kept (default 0.1)",
    )
    p.add_argument(
        "--from-data",
        default=None,
        metavar="SPLIT",
        help="take conditions (and ground truth) from the run config's data.params.SPLIT",
    )
    p.add_argument("--no-grid", action="store_true", help="do not write grid.png")
    p.add_argument(
        "--overwrite", action="store_true", help="allow writing into a folder with samples"
    )
    p.add_argument(
        "--max-tokens",
        type=int,
        default=65536,
        help="refuse images of more tokens than this (default 65536)",
    )
    p.add_argument(
        "--max-decode-gib",
        type=float,
        default=16.0,
        help="refuse batches whose decode needs more memory than this (default 16 GiB)",
    )
    p.add_argument("--unsafe", action="store_true", help="allow checkpoints that may run code")
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    p.add_argument(
        "--no-cache", action="store_true", help="recompute every step (the original's way)"
    )
    p.add_argument(
        "--decode-weights",
        choices=["bf16", "fp16", "int8", "w8a8"],
        default=None,
        help="opt-in: cached sampling multiplies with bf16/fp16 copies or per-channel int8 "
        "quantisations of the transformer's Linear weights (w8a8: int8 weights and per-call "
        "int8 activations, fbgemm; logits differ from fp32 by ~1e-2; "
        "kept fp32, with a warning, where a quick probe finds the format slower on this CPU)",
    )
    p.add_argument(
        "--compile",
        action="store_true",
        help="opt-in: torch.compile the transformer's one-token decode step and the VQGAN "
        "decoder (inductor; needs a C++ compiler on CPU; compiling takes a while at first)",
    )
    p.add_argument(
        "--dtype",
        choices=["fp32", "bf16"],
        default="fp32",
        help="opt-in: run the VQGAN decoder in bf16 (CPUs with native bf16; default fp32)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "overrides", nargs="*", metavar="key.sub=value", help="config overrides (OmegaConf dotlist)"
    )
    p.set_defaults(func=run, _parser=p)


def run(args: argparse.Namespace) -> int:
    from taming.config import ConfigError
    from taming.pipeline import SampleError, SampleOptions, run_sampling

    for item in args.overrides:
        if "=" not in item:
            args._parser.error(f"unrecognised argument '{item}' (overrides are key.sub=value)")
    opts = SampleOptions(
        resume=args.resume,
        ckpt=args.ckpt,
        outdir=args.outdir,
        base=list(args.base or []),
        overrides=list(args.overrides),
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        top_k=args.top_k,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed,
        classes=args.classes,
        cfg_scale=args.cfg_scale,
        condition=args.condition,
        size=args.size,
        complete=args.complete,
        keep_top=args.keep_top,
        mask=args.mask,
        rejection=args.rejection,
        acceptance=args.acceptance,
        from_data=args.from_data,
        grid=not args.no_grid,
        overwrite=args.overwrite,
        max_tokens=args.max_tokens,
        max_decode_gib=args.max_decode_gib,
        unsafe=args.unsafe,
        device=args.device,
        use_cache=not args.no_cache,
        decode_weights=args.decode_weights,
        compile=args.compile,
        first_stage_dtype=args.dtype,
        progress=not args.no_progress,
    )
    try:
        result = run_sampling(opts)
    except ValueError as e:  # a model/condition mismatch found deeper down: one line too
        if isinstance(e, ConfigError) or not str(e):
            raise
        raise SampleError(str(e).splitlines()[0]) from e
    s = result.summary
    print(f"{s['images']} images in {s['seconds']:.1f} s: {result.folder}")
    for grid in result.grids:
        print(f"  grid: {grid}")
    rejection = s.get("rejection")
    if rejection:
        for key, info in rejection["per_class"].items():
            print(
                f"  {key}: kept {info['kept']} of {info['candidates']} "
                f"(acceptance rate {info['acceptance_rate']:.3f})"
            )
    return 0
