"""VQGAN training-iteration throughput (images per second), ours vs the original's way.

Config (the first issue's speed note): ch 64, ch_mult [1,1,2,2], num_res_blocks 2,
attn_resolutions [8], z_channels 64, embed_dim 64, n_embed 1024, resolution 64; batch 4, fp32,
2 threads. Loss: `VQLPIPSWithDiscriminator` with the perceptual loss on a VGG16 trunk (random
weights: `lpips_pretrained=False`, same cost), the discriminator active from step 0
(`disc_start=0`), everything in train mode (LPIPS dropout and discriminator BatchNorm active,
as in the original training).

An iteration is a generator step plus a discriminator step, each with backward and Adam step:

- ours (`taming.train.gan_step`, what `taming train` runs): one autoencoder forward; the
  adaptive weight from the losses' gradients w.r.t. the reconstruction (one backward through
  LPIPS, one through the discriminator); one backward through the autoencoder; the
  discriminator step reuses the (detached) reconstruction; fused Adam;
- `--baseline` (the original, PL 1.0 automatic optimization with two optimizers): per
  optimizer a full autoencoder forward with only that optimizer's parameters requiring
  gradients; the adaptive weight by two `autograd.grad` calls through LPIPS and the
  discriminator, then a full backward; PyTorch's default Adam.

With `--baseline` both are timed in the same run, alternating every iteration, from the same
initial weights; `speedup` is the median over iterations of baseline time / our time (robust
to the load of a shared machine), times are medians.

    flock /tmp/taming-bench.lock python benchmarks/bench_train.py --baseline --json

prints a JSON object: images_per_s (ours), gen_s / disc_s (seconds per step), and with
--baseline also baseline_images_per_s, baseline_gen_s, baseline_disc_s and speedup; then, as
the last line, the workload line that `make bench` collects (`ours` / `original` images/s,
`ratio`, peak RSS of each side from a child process that runs only that side's iterations, the
CPU and the load).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Callable

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from benchutil import (  # noqa: E402
    cpu_info,
    loadavg_1m,
    peak_rss_mib,
    print_rss_probe,
    rss_mark,
    workload_line,
)
from taming.autoencoder.vqmodel import VQModel  # noqa: E402
from taming.train.gan_step import discriminator_step, generator_step, make_adam  # noqa: E402

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
LOSSCONFIG = dict(
    target="taming.losses.vqperceptual.VQLPIPSWithDiscriminator",
    params=dict(disc_start=0, disc_weight=0.8, codebook_weight=1.0, lpips_pretrained=False),
)


def build(seed: int = 0, original_adam: bool = False):
    """The speed-note VQGAN with its loss, in train mode, and the two Adam optimizers.

    `original_adam`: PyTorch's default Adam (the original's); else the trainer's (fused).
    """
    torch.manual_seed(seed)
    model = VQModel(ddconfig=DDCONFIG, lossconfig=LOSSCONFIG, n_embed=1024, embed_dim=64)
    model.init_loss()
    model.train()
    ae = [p for n, p in model.named_parameters() if not n.startswith("loss.") and p.requires_grad]
    d = list(model.loss.discriminator.parameters())
    lr = 4.5e-6 * 4
    if original_adam:
        adam = lambda ps: torch.optim.Adam(ps, lr=lr, betas=(0.5, 0.9))  # noqa: E731
    else:
        adam = lambda ps: make_adam(ps, lr)  # noqa: E731
    return model, adam(ae), adam(d)


def ours(model: VQModel, opt_ae, opt_d, x: torch.Tensor, step: int) -> tuple[float, float]:
    """One iteration as `taming train` runs it; returns (generator s, discriminator s)."""
    t0 = time.perf_counter()
    out = generator_step(model, x, step)
    opt_ae.zero_grad(set_to_none=True)
    out.surrogate.backward()
    opt_ae.step()
    t1 = time.perf_counter()
    d_loss, _ = discriminator_step(model.loss, x, out.reconstructions, step)
    opt_d.zero_grad(set_to_none=True)
    d_loss.backward()
    opt_d.step()
    return t1 - t0, time.perf_counter() - t1


def _toggle(opt: torch.optim.Optimizer, all_params: list[torch.Tensor]) -> None:
    # PL 1.0 `toggle_optimizer`: only the current optimizer's parameters require gradients
    mine = {id(p) for g in opt.param_groups for p in g["params"]}
    for p in all_params:
        p.requires_grad_(id(p) in mine)


def baseline(model: VQModel, opt_ae, opt_d, x: torch.Tensor, step: int) -> tuple[float, float]:
    """One iteration the original's way; returns (generator s, discriminator s)."""
    params = [p for g in opt_ae.param_groups + opt_d.param_groups for p in g["params"]]
    last = model.get_last_layer()
    t0 = time.perf_counter()
    _toggle(opt_ae, params)
    xrec, qloss = model(x)
    aeloss, _ = model.loss(qloss, x, xrec, 0, step, last_layer=last, split="train")
    opt_ae.zero_grad(set_to_none=True)
    aeloss.backward()
    opt_ae.step()
    t1 = time.perf_counter()
    _toggle(opt_d, params)
    xrec, qloss = model(x)
    discloss, _ = model.loss(qloss, x, xrec, 1, step, last_layer=last, split="train")
    opt_d.zero_grad(set_to_none=True)
    discloss.backward()
    opt_d.step()
    t2 = time.perf_counter()
    for p in params:
        p.requires_grad_(True)
    return t1 - t0, t2 - t1


def _median(values: list[float]) -> float:
    values = sorted(values)
    return values[len(values) // 2]


def measure(
    runners: dict[str, Callable], batch: int, rounds: int, warmup: int
) -> tuple[dict[str, tuple[float, float]], float | None]:
    """Median (generator s, discriminator s) per runner, and the median paired speedup.

    The runners alternate every iteration (the order flips each round), so both see the same
    machine load; the speedup is the median over rounds of baseline time / our time.
    """
    setups = {name: build(original_adam=name == "baseline") for name in runners}
    x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in runners}
    step = 0
    for _ in range(warmup):
        for name, fn in runners.items():
            fn(*setups[name], x, step)
        step += 1
    names = list(runners)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            times[name].append(runners[name](*setups[name], x, step))
        step += 1
    medians = {
        name: (_median([t[0] for t in ts]), _median([t[1] for t in ts]))
        for name, ts in times.items()
    }
    speedup = None
    if "baseline" in times:
        ratios = [sum(b) / sum(o) for o, b in zip(times["ours"], times["baseline"])]
        speedup = _median(ratios)
    return medians, speedup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print a JSON line at the end")
    parser.add_argument("--baseline", action="store_true", help="also time the original's way")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=12, help="timed iterations per runner")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-RSS child runs")
    parser.add_argument("--rss-probe", help=argparse.SUPPRESS)  # ours | baseline
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    if args.rss_probe:
        rss_probe(args.rss_probe, args.batch)
        return
    load_before = loadavg_1m()
    runners: dict[str, Callable] = {"ours": ours}
    if args.baseline:
        runners["baseline"] = baseline
    res, speedup = measure(runners, args.batch, args.rounds, args.warmup)
    gen, disc = res["ours"]
    out: dict[str, float] = {
        "images_per_s": round(args.batch / (gen + disc), 3),
        "gen_s": round(gen, 4),
        "disc_s": round(disc, 4),
    }
    print(
        f"ours:     {out['images_per_s']:.2f} images/s (generator {gen:.3f} s, disc {disc:.3f} s)"
    )
    if args.baseline:
        bgen, bdisc = res["baseline"]
        out["baseline_images_per_s"] = round(args.batch / (bgen + bdisc), 3)
        out["baseline_gen_s"] = round(bgen, 4)
        out["baseline_disc_s"] = round(bdisc, 4)
        out["speedup"] = round(speedup, 3)
        print(
            f"baseline: {out['baseline_images_per_s']:.2f} images/s "
            f"(generator {bgen:.3f} s, disc {bdisc:.3f} s); speedup {out['speedup']:.2f}x"
        )
    load = max(load_before, loadavg_1m())
    out["loadavg_1m"] = load
    rss = {}
    for side in runners:
        probe = ["--rss-probe", side, "--batch", str(args.batch), "--threads", str(args.threads)]
        rss[side] = None if args.no_rss else peak_rss_mib(__file__, probe)
    if args.json:
        print(json.dumps(out))
        print(
            workload_line(
                "train",
                "train_iteration_64",
                "img/s",
                out["images_per_s"],
                out.get("baseline_images_per_s"),
                out.get("speedup"),
                rss["ours"],
                rss.get("baseline"),
                batch=args.batch,
                threads=args.threads,
                loadavg_1m=load,
                **cpu_info(),
            )
        )


def rss_probe(side: str, batch: int) -> None:
    """Child process: two iterations of one side (the second has the optimizer states)."""
    fn = {"ours": ours, "baseline": baseline}[side]
    setup = build(original_adam=side == "baseline")
    x = torch.rand(batch, 3, 64, 64, generator=torch.Generator().manual_seed(1)) * 2 - 1
    mark = rss_mark()
    for step in range(2):
        fn(*setup, x, step)
    print_rss_probe(mark)


if __name__ == "__main__":
    main()
