"""The `taming` command line: one subcommand per module in `taming.commands`.

    taming train -b configs/custom_vqgan.yaml -t      # train (original main.py flags)
    taming demo                                      # embedded demo, no downloads
    taming convert CKPT OUT.safetensors              # original .ckpt -> safetensors

Each subcommand module defines `register(subparsers)` (adds its parser and sets `func`).
Errors that are the user's to fix (bad config, missing file, missing weights) are printed as one
line without a traceback; `--traceback` shows it.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from taming import __version__

logger = logging.getLogger("taming")

# subcommand modules, in help order; a module that is missing is skipped
COMMANDS = (
    "train",
    "sample",
    "reconstruct",
    "eval",
    "convert",
    "models",
    "demo",
    "data",
    "clip",
    "serve",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="taming",
        description="VQGAN + transformer image synthesis (Taming Transformers, CVPR 2021).",
    )
    parser.add_argument("--version", action="version", version=f"taming {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--traceback", action="store_true", help="show tracebacks of errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"taming.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"taming.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from taming.compat.checkpoint import CheckpointError
    from taming.config import ConfigError

    errors: list[type[BaseException]] = [ConfigError, CheckpointError, FileNotFoundError]
    return tuple(errors)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    if not getattr(args, "func", None):
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except _user_errors() as e:
        if args.traceback:
            raise
        print(f"taming {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"taming {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
