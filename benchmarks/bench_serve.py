"""Latency of the web app (`taming serve`) with the demo models, over real HTTP.

    taming demo --out demo_out                                  # trains the demo models
    python benchmarks/bench_serve.py --model demo_out --transformer demo_out/transformer --json

Serves the models with uvicorn on a free 127.0.0.1 port in this process and reports medians
over `--repeats` of:
- `reconstruct_256_s`: `POST /api/reconstruct` of a 256x256 PNG at `size=256` (encode + decode
  through the demo VQGAN, f4 -> 64x64 codes), and `reconstruct_256_direct_s`, the same model
  call in process (encode + decode of the same tensor) as the baseline, run alternately;
- `sample_16x16_s`: `POST /api/sample` of one image (the demo transformer: 16x16 tokens,
  top-k 100), and `sample_16x16_direct_s`, the same sampler call in process, alternately;
- `concurrent`: `--clients` (4) threads each sending `--per-client` mixed requests
  (reconstruct, sample, healthz) at once: request count, errors, wall time.
`http_overhead_*` are the differences. `loadavg_1m` is reported: other processes on a 2-core
machine distort these timings.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import threading
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from taming import images
from taming.serve import create_app, load_served
from taming.serve import sampling as serve_sampling
from taming.serve.background import serve_in_thread


def photo(size: int = 256, seed: int = 0) -> bytes:
    """A smooth random RGB image (PNG bytes)."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8))
    buf = io.BytesIO()
    small.resize((size, size), Image.Resampling.BICUBIC).save(buf, format="PNG")
    return buf.getvalue()


def timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="demo_out", help="first stage run (default demo_out)")
    p.add_argument("--transformer", default=None, help="default: MODEL/transformer")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--clients", type=int, default=4)
    p.add_argument("--per-client", type=int, default=6)
    p.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    import httpx

    torch.set_num_threads(args.threads)
    transformer = args.transformer or str(Path(args.model) / "transformer")
    stages, transformers = load_served([args.model], [transformer])
    stage, model = stages[0].model, transformers[0].model
    app = create_app(stages, transformers)
    data = photo(256)
    tmp = Path(os.environ.get("TMPDIR", "/tmp")) / "bench_serve_photo.png"
    tmp.write_bytes(data)
    x = images.load(tmp, size=256)
    res: dict = {"tokens": transformers[0].info["tokens"], "threads": args.threads}
    load_before = os.getloadavg()[0]
    with serve_in_thread(app) as url, httpx.Client(base_url=url, timeout=600) as client:

        def post_recon() -> None:
            r = client.post(
                "/api/reconstruct", files={"image": ("p.png", data)}, data={"size": "256"}
            )
            r.raise_for_status()

        def direct_recon() -> None:
            with torch.inference_mode():
                stage.decode(stage.encode(x)[0])

        def post_sample() -> None:
            r = client.post("/api/sample", data={"n": "1", "top_k": "100", "seed": "0"})
            r.raise_for_status()

        def direct_sample() -> None:
            with torch.inference_mode():
                serve_sampling.sample(
                    model, 1, None, top_k=100, top_p=None, temperature=1.0, cfg_scale=1.0, seed=0
                )

        post_recon(), direct_recon(), post_sample(), direct_sample()  # warm-up
        times: dict[str, list[float]] = {k: [] for k in ("rh", "rd", "sh", "sd")}
        for _ in range(args.repeats):  # alternately, so load changes hit both
            times["rh"].append(timed(post_recon))
            times["rd"].append(timed(direct_recon))
            times["sh"].append(timed(post_sample))
            times["sd"].append(timed(direct_sample))
        med = {k: statistics.median(v) for k, v in times.items()}
        res.update(
            reconstruct_256_s=round(med["rh"], 4),
            reconstruct_256_direct_s=round(med["rd"], 4),
            http_overhead_reconstruct_s=round(med["rh"] - med["rd"], 4),
            sample_16x16_s=round(med["sh"], 4),
            sample_16x16_direct_s=round(med["sd"], 4),
            http_overhead_sample_s=round(med["sh"] - med["sd"], 4),
        )

        errors: list[str] = []
        count = [0]
        lock = threading.Lock()

        def worker(k: int) -> None:
            with httpx.Client(base_url=url, timeout=600) as c:
                for i in range(args.per_client):
                    kind = (k + i) % 3
                    if kind == 0:
                        r = c.post("/api/reconstruct", files={"image": ("p.png", data)})
                    elif kind == 1:
                        r = c.post("/api/sample", data={"n": "1", "seed": str(k * 100 + i)})
                    else:
                        r = c.get("/healthz")
                    with lock:
                        count[0] += 1
                        if r.status_code != 200:
                            errors.append(f"{r.status_code} {r.text.strip()}")

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        res["concurrent"] = {
            "clients": args.clients,
            "requests": count[0],
            "errors": len(errors),
            "first_errors": errors[:3],
            "wall_s": round(time.perf_counter() - t0, 2),
        }
    res["loadavg_1m"] = round(max(load_before, os.getloadavg()[0]), 2)
    print(
        f"reconstruct 256x256: {res['reconstruct_256_s']:.3f} s over HTTP, "
        f"{res['reconstruct_256_direct_s']:.3f} s direct; sample one {res['tokens']} image: "
        f"{res['sample_16x16_s']:.3f} s over HTTP, {res['sample_16x16_direct_s']:.3f} s direct; "
        f"{args.clients} clients: {res['concurrent']['requests']} requests, "
        f"{res['concurrent']['errors']} errors in {res['concurrent']['wall_s']} s "
        f"(load {res['loadavg_1m']})"
    )
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
