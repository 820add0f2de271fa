"""The `taming` command line: one subcommand per module in `taming.commands`.

    taming train -b configs/custom_vqgan.yaml -t      # train (original main.py flags)
    taming demo                                      # embedded demo, no downloads
    taming convert CKPT OUT.safetensors              # original .ckpt -> safetensors

Each subcommand module defines `register(subparsers)` (adds its parser and sets `func`).
Errors that are the user's to fix (bad config, refused config target or pickle, missing or
unreadable file, read-only folder, full disk) are printed as one line without a traceback and
exit with 2; a training run stopped on a non-finite loss exits with 3. `--traceback` (before or
after the command name) shows the full trace.

Every command takes `--trust-config`: config `target:`s are otherwise resolved through an allow
list (see `taming.config`).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

from taming import __version__

logger = logging.getLogger("taming")

# subcommand modules (`taming.commands.<name>`), in help order
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

EXIT_USER_ERROR = 2
EXIT_NON_FINITE = 3


def _add_common_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--trust-config",
        action="store_true",
        help="import any target a config names (configs can run code; only for configs you "
        "trust); default: taming's classes, the original targets, torch.nn/torch.optim only",
    )
    p.add_argument(
        "--traceback",
        action="store_true",
        default=argparse.SUPPRESS,
        help="show the full traceback of an error",
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
        importlib.import_module(f"taming.commands.{name}").register(sub)
    for p in sub.choices.values():
        _add_common_flags(p)
    return parser


def _user_errors() -> tuple[type[BaseException], ...]:
    from taming.compat.checkpoint import CheckpointError
    from taming.config import ConfigError
    from taming.data.io import NoReadableExampleError

    return (ConfigError, CheckpointError, FileNotFoundError, NoReadableExampleError)


def _os_error_line(e: OSError) -> str | None:
    """One line for a read-only folder or a full disk (naming the file and its disk)."""
    import errno
    import shutil
    from pathlib import Path

    name = e.filename or ""
    if e.errno == errno.ENOSPC:
        where = Path(name).parent if name else Path.cwd()
        while not where.exists() and where != where.parent:
            where = where.parent
        try:
            free = shutil.disk_usage(where).free / 2**20
            disk = f" (disk of {where}: {free:.1f} MiB free)"
        except OSError:
            disk = ""
        return f"no space left on device writing {name or 'a file'}{disk}"
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return f"cannot write {name or 'a file'}: permission denied (read-only folder?)"
    return None


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
    from taming.config import trusted_config

    try:
        with trusted_config(bool(getattr(args, "trust_config", False))):
            return int(args.func(args) or 0)
    except _user_errors() as e:
        if args.traceback:
            raise
        _error(args, e)
        return EXIT_USER_ERROR
    except OSError as e:
        line = _os_error_line(e)
        if line is None or args.traceback:
            raise
        _error(args, line)
        return EXIT_USER_ERROR
    except KeyboardInterrupt:
        print(f"taming {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        from taming.train.finite import NonFiniteLossError

        if not isinstance(e, NonFiniteLossError) or args.traceback:
            raise
        _error(args, e)
        return EXIT_NON_FINITE


def _error(args: argparse.Namespace, e: object) -> None:
    lines = [line for line in str(e).splitlines() if line.strip()]
    if len(lines) > 1 and lines[0].startswith("Caught ") and "Original Traceback" in str(e):
        # re-raised from a DataLoader worker: the original error is the last line
        last = lines[-1]
        lines = [last.split(": ", 1)[1] if ": " in last else last]
    text = " ".join(lines[0].split()) if lines else type(e).__name__
    print(f"taming {args.command}: error: {text}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
