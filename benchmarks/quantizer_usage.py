"""Codebook usage of quantizers in the small CPU tokenizer, and the cost of the quantizer.

Trains `configs/vqgan/skimage_modern.yaml` (the `taming demo` autoencoder on 64 px crops of
scikit-image's photos, PatchGAN + LeCAM, no LPIPS) four times, differing only in the
quantizer:

    a  legacy      the original VectorQuantizer, K 4096, dim 32, legacy beta
    b  l2-fact     ImprovedVectorQuantizer, K 4096, 32 -> 8 factorised lookup, l2-normalised
                   codes, dead-code restart after 20 unused steps (the config's quantizer)
    c  fsq         FSQ [7, 5, 5, 5, 5] (4375 implicit codes, 5 latent channels), the paper's
    d  fsq+entropy FSQ [7, 5, 5, 5, 5] with the entropy penalty (weight 0.03; see `taming.quantize
                   .FSQ`): without it the channels correlate and part of the grid goes unused

The runs share everything else (initial autoencoder weights where shapes agree, the batches,
the learning rate `base_learning_rate * batch`). They advance in lockstep, one training
iteration each per batch (generator step + discriminator step, `taming.train.gan_step`, as
`taming train` runs them), until `--minutes` per run have passed in total (or `--steps`), so
each gets the same number of steps whatever the machine's load. Then each model encodes
`--eval-crops` fixed random crops (seeded) and the table reports codebook usage (fraction of
the K codes used at least once), perplexity (exp of the code entropy), PSNR, and LPIPS when the
VGG16 + LPIPS weights are on disk.

    python benchmarks/quantizer_usage.py --minutes 5 [--json]
    python benchmarks/quantizer_usage.py --speed [--json]

`--speed`: forward + backward of quantizers at K 16384, dim 8, input (4, 8, 32, 32), and one
training iteration of `benchmarks/bench_train.py`'s config, alternating in the same run;
medians and the ratio quantizer / iteration.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import random
import sys
import time
from pathlib import Path

import torch
from omegaconf import OmegaConf

from taming.autoencoder.vqmodel import VQModel
from taming.config import instantiate_from_config
from taming.data.demo import SkimagePhotos
from taming.metrics.codebook import codebook_stats, histogram
from taming.metrics.image import psnr
from taming.train.gan_step import discriminator_step, generator_step, make_adam

REPO = Path(__file__).resolve().parents[1]
CONFIG = REPO / "configs" / "vqgan" / "skimage_modern.yaml"

VARIANTS = {
    "a": ("legacy VQ K4096", None),
    "b": ("l2+fact+restart K4096", "config"),
    "c": (
        "FSQ [7,5,5,5,5] K4375",
        {"target": "taming.quantize.FSQ", "params": {"levels": [7, 5, 5, 5, 5]}},
    ),
    "d": (
        "FSQ [7,5,5,5,5] K4375 + entropy 0.03",
        {
            "target": "taming.quantize.FSQ",
            "params": {"levels": [7, 5, 5, 5, 5], "entropy_weight": 0.03},
        },
    ),
}


def set_fsq_levels(levels: list[int]) -> None:
    """Variants (c) and (d) with other FSQ levels (`--fsq-levels 4,4,4,4,4,4`)."""
    for v in "cd":
        name, quantizer = VARIANTS[v]
        rest = name.split(" + ")[1:]
        name = f"FSQ [{','.join(map(str, levels))}] K{math.prod(levels)}"
        VARIANTS[v] = (
            " + ".join([name, *rest]),
            {**quantizer, "params": {**quantizer["params"], "levels": list(levels)}},
        )


def set_fsq_entropy_weight(weight: float) -> None:
    """Variant (d) with another entropy weight (`--fsq-entropy-weight 0.03`)."""
    name, quantizer = VARIANTS["d"]
    VARIANTS["d"] = (
        f"{name.split(' + ')[0]} + entropy {weight:g}",
        {**quantizer, "params": {**quantizer["params"], "entropy_weight": weight}},
    )


def model_params(variant: str) -> tuple[dict, dict]:
    cfg = OmegaConf.to_container(OmegaConf.load(CONFIG), resolve=True)
    params = copy.deepcopy(cfg["model"]["params"])
    quantizer = VARIANTS[variant][1]
    if quantizer is None:  # the original quantizer at the demo's latent size
        del params["quantizer_config"]
        params.update(n_embed=4096, embed_dim=32)
    elif quantizer != "config":
        params["quantizer_config"] = quantizer
    return params, cfg


def lpips_or_none():
    """LPIPS with its real weights, or None (with the reason) when they are not on disk."""
    from taming.losses.lpips import LPIPS
    from taming.losses.weights import WeightsNotFoundError

    try:
        return LPIPS().eval(), None
    except WeightsNotFoundError as e:
        return None, f"no {e.what} on disk; looked in {', '.join(map(str, e.searched[:2]))}, ..."


def crops(n: int, seed: int) -> torch.Tensor:
    """n random 64 px training crops (fixed by `seed`), (n, 3, 64, 64) in [-1, 1]."""
    state = random.getstate()
    random.seed(seed)
    data = SkimagePhotos(size=64, length=n, split="train")
    x = torch.stack([torch.as_tensor(data[i]["image"]) for i in range(n)])
    random.setstate(state)
    return x.permute(0, 3, 1, 2).contiguous()


@torch.no_grad()
def evaluate(model: VQModel, x: torch.Tensor, lpips) -> dict[str, float]:
    model.eval()
    counts = torch.zeros(model.n_embed, dtype=torch.long)
    ps, lp = [], []
    for batch in x.split(32):
        quant, _, info = model.encode(batch)
        rec = model.decode(quant)
        counts += histogram(info.indices, model.n_embed)
        ps.append(psnr(batch, rec) * batch.shape[0])
        if lpips is not None:
            lp.append(lpips(batch, rec.clamp(-1, 1)).sum())
    usage, perplexity = codebook_stats(counts)
    model.train()
    return {
        "codes": model.n_embed,
        "used": int((counts > 0).sum()),
        "usage": float(usage),
        "perplexity": float(perplexity),
        "psnr": float(sum(ps) / x.shape[0]),
        "lpips": float(sum(lp) / x.shape[0]) if lp else None,
    }


def train_usage(args: argparse.Namespace) -> dict:
    torch.set_num_threads(args.threads)
    runs = {}
    for v in args.variants:
        params, cfg = model_params(v)
        torch.manual_seed(args.seed)
        model = VQModel(**params)
        model.init_loss()
        model.train()
        if runs:  # same initial weights wherever the shapes agree
            first = next(iter(runs.values()))["model"].state_dict()
            own = model.state_dict()
            same = {k: t for k, t in first.items() if k in own and own[k].shape == t.shape}
            model.load_state_dict(same, strict=False)
        lr = cfg["model"]["base_learning_rate"] * cfg["data"]["params"]["batch_size"]
        ae = [
            p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("loss.")
        ]
        runs[v] = {
            "model": model,
            "opt_ae": make_adam(ae, lr),
            "opt_d": make_adam(model.loss.discriminator.parameters(), lr),
            "batch": cfg["data"]["params"]["batch_size"],
        }
    bs = next(iter(runs.values()))["batch"]
    random.seed(args.seed)
    data = SkimagePhotos(size=64, length=10**6, split="train")
    budget = args.minutes * 60 * len(runs)
    t0, step, seconds = time.perf_counter(), 0, {v: 0.0 for v in runs}
    while step < args.steps and time.perf_counter() - t0 < budget:
        batch = [data[step * bs + i]["image"] for i in range(bs)]
        x = torch.stack([torch.as_tensor(b) for b in batch]).permute(0, 3, 1, 2).contiguous()
        for v, r in runs.items():
            ts = time.perf_counter()
            out = generator_step(r["model"], x, step)
            r["opt_ae"].zero_grad(set_to_none=True)
            out.surrogate.backward()
            r["opt_ae"].step()
            d_loss, _ = discriminator_step(r["model"].loss, x, out.reconstructions, step)
            r["opt_d"].zero_grad(set_to_none=True)
            d_loss.backward()
            r["opt_d"].step()
            seconds[v] += time.perf_counter() - ts
        step += 1
        if step % 100 == 0:
            print(f"step {step}  {time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
    lpips, why = lpips_or_none()
    x_eval = crops(args.eval_crops, seed=args.seed + 1)
    rows = {
        v: {**evaluate(r["model"], x_eval, lpips), "train_s": seconds[v]} for v, r in runs.items()
    }
    return {"steps": step, "rows": rows, "lpips_missing": why, "eval_crops": args.eval_crops}


def print_usage_table(res: dict) -> None:
    print(f"steps per run: {res['steps']}, eval: {res['eval_crops']} crops of 64 px (16x16 codes)")
    print("| run | quantizer | codes used | usage | perplexity | PSNR (dB) | LPIPS | train s |")
    print("|---|---|---|---|---|---|---|---|")
    for v, r in res["rows"].items():
        lp = f"{r['lpips']:.4f}" if r["lpips"] is not None else "n/a"
        print(
            f"| {v} | {VARIANTS[v][0]} | {r['used']} / {r['codes']} | {100 * r['usage']:.1f}% "
            f"| {r['perplexity']:.0f} | {r['psnr']:.2f} | {lp} | {r['train_s']:.0f} |"
        )
    if res["lpips_missing"]:
        print(f"LPIPS: n/a ({res['lpips_missing']})")


# -- speed ------------------------------------------------------------------------------------


def speed(args: argparse.Namespace) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import bench_train

    torch.set_num_threads(args.threads)
    quantizers = {
        "l2 VQ K16384 d8 (modern config)": {
            "target": "taming.quantize.ImprovedVectorQuantizer",
            "params": {"n_e": 16384, "e_dim": 8, "l2_norm": True, "restart_unused_after": 1000},
        },
        "legacy VQ K16384 d8": {
            "target": "taming.quantize.VectorQuantizer",
            "params": {"n_e": 16384, "e_dim": 8},
        },
        "FSQ [8,8,8,6,5] (15360)": {
            "target": "taming.quantize.FSQ",
            "params": {"levels": [8, 8, 8, 6, 5]},
        },
        "LFQ 2^14 (batch entropy in 2 groups of 7 bits)": {
            "target": "taming.quantize.LFQ",
            "params": {"codebook_size": 16384, "entropy_group_bits": 7},
        },
    }
    qs = {name: instantiate_from_config(c).train() for name, c in quantizers.items()}
    model, opt_ae, opt_d = bench_train.build()
    x = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    g = torch.Generator().manual_seed(0)

    def run_quantizer(q) -> float:
        c = q.embed_dim
        z = torch.randn(4, c, 32, 32, generator=g).requires_grad_(True)
        t = time.perf_counter()
        quant, loss, _ = q(z)
        (quant.square().mean() + loss).backward()
        return time.perf_counter() - t

    times = {name: [] for name in qs}
    times["iteration"] = []
    for q in qs.values():  # warm-up
        run_quantizer(q)
    bench_train.ours(model, opt_ae, opt_d, x, 0)
    for r in range(args.rounds):
        times["iteration"].append(sum(bench_train.ours(model, opt_ae, opt_d, x, r)))
        for name, q in qs.items():
            times[name].append(run_quantizer(q))
    med = {k: sorted(v)[len(v) // 2] for k, v in times.items()}
    return {"median_s": med, "ratio": {k: med[k] / med["iteration"] for k in qs}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=5.0, help="training budget per run")
    parser.add_argument("--steps", type=int, default=10**9, help="at most this many steps")
    parser.add_argument("--variants", default="abcd", help="subset of a, b, c, d")
    parser.add_argument("--eval-crops", type=int, default=256)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--speed", action="store_true", help="time the quantizers instead")
    parser.add_argument("--rounds", type=int, default=5, help="--speed: timed rounds")
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    parser.add_argument(
        "--fsq-levels", default=None, help="levels of variants (c, d), e.g. 4,4,4,4,4,4"
    )
    parser.add_argument(
        "--fsq-entropy-weight", type=float, default=None, help="entropy weight of variant (d)"
    )
    args = parser.parse_args()
    if args.fsq_levels:
        set_fsq_levels([int(v) for v in args.fsq_levels.split(",")])
    if args.fsq_entropy_weight is not None:
        set_fsq_entropy_weight(args.fsq_entropy_weight)
    if args.speed:
        res = speed(args)
        it = res["median_s"]["iteration"]
        print(f"bench_train iteration (batch 4, 64 px): {it:.3f} s")
        for name, ratio in res["ratio"].items():
            print(f"{name}: fwd+bwd {res['median_s'][name]:.4f} s = {100 * ratio:.1f}% of it")
    else:
        args.variants = [v for v in args.variants if v in VARIANTS]
        res = train_usage(args)
        print_usage_table(res)
    if args.json:
        print(json.dumps(res))


if __name__ == "__main__":
    main()
