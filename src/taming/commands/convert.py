"""`taming convert`: an original (Lightning) checkpoint -> a safetensors state dict.

The output holds only tensors, so loading it never runs pickled code. With `--config`, the
model is built and the converted weights are checked with a strict load first.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

logger = logging.getLogger(__name__)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("convert", help="convert a .ckpt to .safetensors (tensors only)")
    p.add_argument("ckpt", help="original .ckpt / .pt / .pth file")
    p.add_argument("out", help="output .safetensors path")
    p.add_argument("-c", "--config", help="model config to verify the weights against")
    p.add_argument("--prefix", default="", help="keep only keys under this prefix (stripped)")
    p.add_argument("--unsafe", action="store_true", help="allow pickles that may run code")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from safetensors.torch import save_file

    from taming.compat.checkpoint import filter_state_dict, read_checkpoint

    content = read_checkpoint(args.ckpt, unsafe=args.unsafe)
    sd = filter_state_dict(content["state_dict"], prefix=args.prefix)
    if not sd:
        raise FileNotFoundError(f"{args.ckpt}: no keys under prefix '{args.prefix}'")
    if args.config:
        import taming

        model = taming.load(args.config)
        from taming.loading import load_model_state

        load_model_state(model, sd, source=args.ckpt)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_file({k: v.contiguous() for k, v in sd.items()}, str(out))
    logger.info("wrote %d tensors to %s", len(sd), out)
    return 0
