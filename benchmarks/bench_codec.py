"""Encode/decode throughput of the VQGAN first stage (images per second).

Config (issue 2's speed note): ch 64, ch_mult [1,1,2,2], num_res_blocks 2, attn_resolutions [8],
z_channels 64, embed_dim 64, n_embed 1024, resolution 64; batch 4, fp32, 2 threads; the same
weights are run at 64x64 and 128x128. `encode` = encoder + quant_conv + quantizer (indices);
`decode` = codebook lookup + post_quant_conv + decoder.

    python benchmarks/bench_codec.py --json

prints a JSON object as its last line: encode_64, decode_64, encode_128, decode_128 (images/s).
"""

from __future__ import annotations

import argparse
import json
import time

import torch

from taming.autoencoder.vqmodel import VQModel

DDCONFIG = dict(
    double_z=False,
    z_channels=64,
    resolution=64,
    in_channels=3,
    out_ch=3,
    ch=64,
    ch_mult=[1, 1, 2, 2],
    num_res_blocks=2,
    attn_resolutions=[8],
    dropout=0.0,
)


def timed(fn, min_time: float, warmup: int = 2) -> float:
    """Median seconds per call over repeated calls lasting at least `min_time` in total."""
    for _ in range(warmup):
        fn()
    times = []
    start = time.perf_counter()
    while time.perf_counter() - start < min_time or len(times) < 5:
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    times.sort()
    return times[len(times) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=3.0, help="seconds per measurement")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = VQModel(ddconfig=DDCONFIG, lossconfig=None, n_embed=1024, embed_dim=64).eval()

    results: dict[str, float] = {}
    for res in (64, 128):
        x = torch.rand(args.batch, 3, res, res) * 2 - 1
        with torch.inference_mode():
            _, _, info = model.encode(x)
            codes = info.indices.view(args.batch, res // 8, res // 8)

            def enc(x=x):
                return model.encode(x)

            def dec(codes=codes):
                return model.decode_code(codes)

            t_enc = timed(enc, args.min_time)
            t_dec = timed(dec, args.min_time)
        results[f"encode_{res}"] = round(args.batch / t_enc, 2)
        results[f"decode_{res}"] = round(args.batch / t_dec, 2)
        print(
            f"{res}x{res}: encode {results[f'encode_{res}']:.1f} img/s "
            f"({t_enc * 1e3:.0f} ms/batch), decode {results[f'decode_{res}']:.1f} img/s "
            f"({t_dec * 1e3:.0f} ms/batch)"
        )
    if args.json:
        print(json.dumps(results))


if __name__ == "__main__":
    main()
