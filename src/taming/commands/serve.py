"""`taming serve`: a web page for reconstruction, sampling and completion (Starlette + uvicorn).

    taming serve --model demo_out --transformer demo_out/transformer      # http://127.0.0.1:8000
    taming serve --model RUN_A --model RUN_B --port 8080 --max-upload-mb 50

Binds 127.0.0.1 unless `--host` says otherwise. Needs the extra `web`
(`pip install 'taming[web]'`). Without `--transformer` the sampling endpoints answer 404.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "serve",
        help="web app: reconstruct uploads, sample and complete images in a browser",
        description=__doc__.splitlines()[0] if __doc__ else None,
    )
    p.add_argument(
        "--model", "-m", action="append", required=True, help="first stage run (repeatable)"
    )
    p.add_argument(
        "--transformer", "-t", action="append", default=[], help="transformer run (repeatable)"
    )
    p.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=8000, help="port (default 8000; 0: any free)")
    p.add_argument("--device", default=None, help="cpu, cuda, ... (default: cuda if available)")
    p.add_argument("--max-upload-mb", type=float, default=20.0, help="upload limit (default 20)")
    p.add_argument(
        "--max-pixels", type=int, default=40_000_000, help="image pixel limit (default 40M)"
    )
    p.add_argument(
        "--max-size", type=int, default=1024, help="largest reconstruction side (default 1024)"
    )
    p.add_argument("--unsafe", action="store_true", help="allow pickled checkpoints (trusted)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from taming.config import ConfigError

    try:
        import uvicorn

        from taming.serve import Limits, create_app, load_served
    except ImportError as e:
        raise ConfigError(
            f"taming serve needs the extra 'web' ({e.name} is missing): pip install 'taming[web]'"
        ) from None
    import torch

    if args.max_upload_mb <= 0 or args.max_pixels <= 0 or args.max_size <= 0:
        raise ConfigError("--max-upload-mb, --max-pixels and --max-size must be positive")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    stages, transformers = load_served(args.model, args.transformer, device, args.unsafe)
    limits = Limits(
        max_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=args.max_pixels,
        max_size=args.max_size,
    )
    app = create_app(stages, transformers, limits)
    logging.getLogger("taming").info(
        "serving %d first stage(s), %d transformer(s) on http://%s:%d",
        len(stages),
        len(transformers),
        args.host,
        args.port,
    )
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0
