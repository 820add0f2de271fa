"""`taming clip`: text-guided generation with CLIP ("VQGAN+CLIP") on any first stage.

    taming clip "a bird drawn by a child" --model RUN --clip openai/clip-vit-base-patch32
    taming clip "a|b:0.5|c:-1" --model RUN --clip FOLDER --steps 200 --size 256,384 \
        --init photo.jpg --image-prompt style.png:0.5 --out out/bird --gif --json

Optimises the first stage's latents (code logits for Gumbel models) so that CLIP finds the
decoded image close to the weighted prompts (negative weights push away). CLIP comes from
Hugging Face `transformers` (`pip install 'taming[clip]'`), read from a `save_pretrained`
folder or the HF cache, never downloaded. Writes `OUT/frames/NNNNNN.png` every `--save-every`
steps, `OUT/final.png` at `--size`, optionally `OUT/frames.gif` (Pillow) and `OUT/frames.mp4`
(when ffmpeg is on PATH); `--json` prints `clip_loss_first`/`clip_loss_last` (the loss on one
fixed, seeded set of cutouts before the first and after the last update) as the last line.
"""

from __future__ import annotations

import argparse
import json
import logging
import math

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "clip",
        help="text-guided generation: steer a first stage's latents with CLIP (VQGAN+CLIP)",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument("prompt", help="text prompts 'a|b:0.5|c:-1' (weight after ':', may be < 0)")
    p.add_argument("--model", "-m", required=True, help="first stage: run folder or config")
    p.add_argument(
        "--clip",
        default=None,
        help="CLIP: save_pretrained folder or HF cache repo id "
        "(default openai/clip-vit-base-patch32)",
    )
    p.add_argument("--steps", type=int, default=100, help="Adam updates (default 100)")
    p.add_argument("--size", default="256,256", help="image size H,W or N (default 256,256)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--lr", type=float, default=0.05, help="step size, relative (default 0.05)")
    p.add_argument("--init", default=None, help="init image (center-cropped to --size)")
    p.add_argument(
        "--image-prompt",
        action="append",
        default=[],
        metavar="PATH[:W]",
        help="an image prompt with an optional weight (repeatable)",
    )
    p.add_argument("--cutouts", type=int, default=32, help="cutouts per step (default 32)")
    p.add_argument("--cut-pow", type=float, default=1.0, help="cutout size exponent")
    p.add_argument("--no-quantize", action="store_true", help="decode unquantised latents")
    p.add_argument("--save-every", type=int, default=10, help="frame every N steps (0: none)")
    p.add_argument("--out", "-o", default=None, help="output folder (default clip_out/<prompt>)")
    p.add_argument("--overwrite", action="store_true", help="reuse an --out that holds a run")
    p.add_argument("--gif", action="store_true", help="also write OUT/frames.gif")
    p.add_argument("--mp4", action="store_true", help="also write OUT/frames.mp4 (needs ffmpeg)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--unsafe", action="store_true", help="allow pickled checkpoints (trusted)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print a JSON summary as the last line")
    p.set_defaults(func=run)


def _size(spec: str) -> tuple[int, int]:
    from taming.config import ConfigError

    try:
        parts = [int(s) for s in spec.replace("x", ",").split(",") if s.strip()]
    except ValueError:
        parts = []
    if len(parts) == 1:
        parts *= 2
    if len(parts) != 2 or min(parts) < 1:
        raise ConfigError(f"--size: expected H,W or N (positive integers), got {spec!r}")
    return parts[0], parts[1]


def _out_dir(args: argparse.Namespace):
    import re
    from pathlib import Path

    from taming.config import ConfigError

    if args.out is None:
        slug = re.sub(r"[^A-Za-z0-9]+", "_", args.prompt).strip("_")[:60] or "prompt"
        out = Path("clip_out") / slug
        k = 1
        while (out / "final.png").exists():
            out, k = Path("clip_out") / f"{slug}-{k}", k + 1
        return out
    out = Path(args.out)
    if (out / "final.png").exists() and not args.overwrite:
        raise ConfigError(f"--out {out} already holds a run (final.png); pass --overwrite")
    return out


def _write_movies(args: argparse.Namespace, out, frames: list) -> dict:
    import shutil
    import subprocess

    from PIL import Image

    written = {}
    if args.gif and frames:
        images = [Image.open(p).convert("RGB") for p in frames]
        images[0].save(
            out / "frames.gif", save_all=True, append_images=images[1:], duration=100, loop=0
        )
        written["gif"] = str(out / "frames.gif")
    if args.mp4 and frames:
        ffmpeg = shutil.which("ffmpeg")
        if ffmpeg is None:
            logger.warning("--mp4: ffmpeg is not on PATH; no MP4 written (the PNG frames are)")
        else:
            cmd = [
                ffmpeg,
                "-y",
                "-loglevel",
                "error",
                "-framerate",
                "10",
                "-i",
                str(out / "frames" / "%06d.png"),
                "-pix_fmt",
                "yuv420p",
                "-vf",
                "pad=ceil(iw/2)*2:ceil(ih/2)*2",
                str(out / "frames.mp4"),
            ]
            subprocess.run(cmd, check=True)
            written["mp4"] = str(out / "frames.mp4")
    return written


def run(args: argparse.Namespace) -> int:
    import time

    import torch
    from tqdm import tqdm

    import taming
    from taming import images
    from taming.clip import GuideSettings, guide_latents, load_clip, parse_prompts
    from taming.clip.guide import first_stage_of, latent_factor
    from taming.clip.perceptor import DEFAULT_CLIP
    from taming.clip.prompts import parse_image_prompt
    from taming.config import ConfigError

    if args.steps < 1:
        raise ConfigError(f"--steps must be >= 1, got {args.steps}")
    if args.save_every < 0 or args.cutouts < 1:
        raise ConfigError("--save-every must be >= 0 and --cutouts >= 1")
    if not (math.isfinite(args.lr) and args.lr > 0):
        raise ConfigError(f"--lr must be a positive number, got {args.lr}")
    prompts = parse_prompts(args.prompt)
    image_prompts = [parse_image_prompt(s) for s in args.image_prompt]
    size = _size(args.size)
    out = _out_dir(args)
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    stage = first_stage_of(taming.load(args.model, unsafe=args.unsafe, device=device))
    perceptor = load_clip(args.clip or DEFAULT_CLIP, device=device)
    f = latent_factor(stage, device)
    work = (math.ceil(size[0] / f) * f, math.ceil(size[1] / f) * f)  # optimised size
    init = images.load(args.init, size=work) if args.init else None

    targets = [perceptor.encode_text([p.text for p in prompts])]
    weights = [p.weight for p in prompts]
    for p in image_prompts:
        view = images.load(p.text, size=perceptor.input_size).to(device)
        with torch.no_grad():
            targets.append(perceptor.encode_image(view))
        weights.append(p.weight)
    settings = GuideSettings(
        steps=args.steps,
        size=work,
        lr=args.lr,
        seed=args.seed,
        cutouts=args.cutouts,
        cut_pow=args.cut_pow,
        quantize=not args.no_quantize,
        frame_every=args.save_every,
    )

    def crop(x: torch.Tensor) -> torch.Tensor:  # the requested size out of the optimised one
        top, left = (work[0] - size[0]) // 2, (work[1] - size[1]) // 2
        return x[..., top : top + size[0], left : left + size[1]]

    frames_dir = out / "frames"
    frames_dir.mkdir(parents=True, exist_ok=True)
    for old in frames_dir.glob("*.png"):  # only with --overwrite: no stale frames of a run
        old.unlink()
    frames, first, last, final = [], None, None, None
    t0 = time.perf_counter()
    bar = tqdm(total=args.steps, desc="clip", unit="step", disable=args.no_progress)
    with bar:
        for s in guide_latents(
            stage, perceptor, torch.cat(targets), torch.tensor(weights), settings, init
        ):
            if s.step == 0:
                first = s.eval_loss
            else:
                bar.update(1)
                bar.set_postfix(loss=f"{s.loss:.4f}")
            if s.eval_loss is not None and s.step > 0:
                last = s.eval_loss
            if s.image is not None and args.save_every and s.step % args.save_every == 0:
                frames.append(images.save(crop(s.image), frames_dir / f"{s.step:06d}.png"))
            if s.image is not None:
                final = s.image
    images.save(crop(final), out / "final.png")
    movies = _write_movies(args, out, frames)
    summary = {
        "clip_loss_first": first,
        "clip_loss_last": last,
        "steps": args.steps,
        "size": list(size),
        "seed": args.seed,
        "prompts": [[p.text, p.weight] for p in prompts + image_prompts],
        "final": str(out / "final.png"),
        "frames": len(frames),
        "seconds": round(time.perf_counter() - t0, 2),
        **movies,
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"CLIP loss {first:.4f} -> {last:.4f} in {args.steps} steps; wrote {out / 'final.png'}")
    if args.json:
        print(json.dumps(summary))
    return 0
