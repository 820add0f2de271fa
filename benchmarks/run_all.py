"""`make bench`: every benchmark against the original in one run, and the README's table.

Runs `bench_codec.py --baseline --json`, `bench_train.py --baseline --json` and
`bench_sample.py --baseline --json` one after another (each alternates ours and the original
itself), collects one JSON line per workload (ours / the original / the ratio / peak RSS of
both, the CPU, the load) and prints a Markdown table followed by those JSON lines last. The
results are also written to `--out` (JSON lines), so that

    python benchmarks/run_all.py --from bench-results.jsonl --update-readme README.md

rewrites the table between `<!-- bench:begin -->` and `<!-- bench:end -->` in the README
without running anything again.

`--isa avx2` runs every benchmark with the kernel libraries capped at AVX2
(`benchutil.ISA_CAPS`): on an AVX-512 host, the kernels an AVX2-only CPU would run, ours and
the original's alike (`make bench ISA=avx2`).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys

from benchutil import ISA_CAPS, isa_env

HERE = os.path.dirname(os.path.abspath(__file__))
BENCHES = {
    "codec": ["bench_codec.py", "--baseline", "--json"],
    "train": ["bench_train.py", "--baseline", "--json"],
    "sample": ["bench_sample.py", "--baseline", "--json"],
}
# bench_sample's keys -> workload lines: (workload, ours key, original key, what the original is)
SAMPLE_WORKLOADS = (
    ("sample_b1", "s_per_image_b1", "baseline_with_past_s_per_image_b1", "sample_with_past"),
    ("sample_b8", "s_per_image_b8", "baseline_with_past_s_per_image_b8", "sample_with_past"),
    ("sample_b1_bf16", "s_per_image_b1_bf16", "baseline_with_past_s_per_image_b1_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b1_int8", "s_per_image_b1_int8", "baseline_with_past_s_per_image_b1_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b1_w8a8", "s_per_image_b1_w8a8", "baseline_with_past_s_per_image_b1_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b8_bf16", "s_per_image_b8_bf16", "baseline_with_past_s_per_image_b8_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b8_int8", "s_per_image_b8_int8", "baseline_with_past_s_per_image_b8_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b8_w8a8", "s_per_image_b8_w8a8", "baseline_with_past_s_per_image_b8_lowp_run",
     "sample_with_past, fp32"),
    ("sample_b1_vs_uncached", "s_per_image_b1", "baseline_uncached_s_per_image_b1", "sample"),
    ("sliding_16x16", "sliding_s_per_image", "baseline_sliding_s_per_image",
     "511-token forward per token"),
    ("sliding_32x32", "sliding_32x32_s_per_image", "baseline_sliding_32x32_s_per_image",
     "511-token forward per token"),
)  # fmt: skip
LABELS = {
    "encode_64": "encode 64x64, batch 4",
    "decode_64": "decode 64x64, batch 4",
    "encode_128": "encode 128x128, batch 4",
    "decode_128": "decode 128x128, batch 4",
    "train_iteration_64": "VQGAN training iteration (64x64, batch 4, LPIPS + disc)",
    "sample_b1": "sampling, batch 1, 256 tokens (8x512 GPT, top-k 100)",
    "sample_b8": "sampling, batch 8",
    "sample_b1_bf16": "sampling, batch 1, bf16 decode weights (opt-in)",
    "sample_b1_int8": "sampling, batch 1, int8 decode weights (opt-in)",
    "sample_b1_w8a8": "sampling, batch 1, int8 weights + int8 activations (opt-in w8a8)",
    "sample_b8_bf16": "sampling, batch 8, bf16 decode weights (opt-in)",
    "sample_b8_int8": "sampling, batch 8, int8 decode weights (opt-in)",
    "sample_b8_w8a8": "sampling, batch 8, int8 weights + int8 activations (opt-in w8a8)",
    "sample_b1_vs_uncached": "sampling, batch 1, vs the original's `sample`",
    "sliding_16x16": "sliding window, 16x16 tokens + 256 cond tokens",
    "sliding_32x32": "sliding window, 32x32 tokens",
}


def sample_lines(res: dict) -> list[dict]:
    """bench_sample's JSON object as workload lines (it reports no peak RSS)."""
    lines = []
    for workload, ours_key, orig_key, what in SAMPLE_WORKLOADS:
        if ours_key not in res:
            continue
        ours, orig = res[ours_key], res.get(orig_key)
        uses = res.get(workload.removeprefix("sample_") + "_uses")  # low-precision rows
        lines.append(
            {
                "bench": "sample",
                "workload": workload,
                "unit": "s/img",
                "ours": ours,
                "original": orig,
                "ratio": round(orig / ours, 3) if orig else None,
                "original_is": what,
                "peak_rss_mib_ours": None,
                "peak_rss_mib_original": None,
                "loadavg_1m": res.get("loadavg_1m"),
                **({"uses": uses} if uses else {}),
            }
        )
    return lines


def run(name: str, extra: list[str], isa: str | None = None) -> list[dict]:
    """Run one benchmark (its output streams through), under `benchutil.isa_env(isa)` if
    given; its workload lines."""
    cmd = [sys.executable, os.path.join(HERE, BENCHES[name][0]), *BENCHES[name][1:], *extra]
    env = isa_env(isa) if isa else dict(os.environ)
    shown = [f"{k}={env[k]}" for k in ISA_CAPS[isa]] if isa else []
    print(f"$ {' '.join([*shown, *cmd])}", flush=True)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)
    objects = []
    for line in proc.stdout:
        sys.stdout.write(line)
        if line.startswith("{"):
            objects.append(json.loads(line))
    if proc.wait() != 0:
        print(f"{name} failed (exit {proc.returncode})", file=sys.stderr)
    lines = [o for o in objects if "workload" in o]
    if not lines and objects and name == "sample":
        lines = sample_lines(objects[-1])
    return lines


def _fmt(value, unit: str) -> str:
    if value is None:
        return "—"
    return f"{value:.2f} {unit}" if unit == "img/s" or value < 10 else f"{value:.1f} {unit}"


def _rss(line: dict, side: str) -> str:
    peak, own = line.get(f"peak_rss_mib_{side}"), line.get(f"workload_rss_mib_{side}")
    if peak is None:
        return "—"
    return f"{peak:.0f}" + (f" (+{own:.0f})" if own is not None else "")


def table(lines: list[dict]) -> str:
    """Markdown table: workload, ours, the original, ratio, peak RSS (ours / original), load."""
    rows = [
        "| workload | ours | the original | ratio | peak RSS MiB (+workload) ours / orig. | load |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for ln in lines:
        unit = ln["unit"]
        ratio = f"{ln['ratio']:.2f}x" if ln.get("ratio") else "—"
        rss = " / ".join(_rss(ln, side) for side in ("ours", "original"))
        orig = _fmt(ln.get("original"), unit)
        if ln.get("original_is"):
            orig += f" ({ln['original_is']})"
        label = LABELS.get(ln["workload"], ln["workload"])
        if ln.get("uses") == "fp32":  # the format was slower than fp32 here (GPT.to_low_precision)
            label += "; the speed probe kept fp32 on this CPU"
        rows.append(
            f"| {label} | {_fmt(ln['ours'], unit)} | {orig} | {ratio} | {rss} "
            f"| {ln.get('loadavg_1m', '—')} |"
        )
    cpus = {(ln.get("cpu"), ln.get("isa"), ln.get("native_bf16")) for ln in lines if "cpu" in ln}
    for cpu, isa, bf16 in sorted(cpus, key=str):
        rows.append("")
        rows.append(f"CPU: {cpu}, {isa}, native bf16 {'yes' if bf16 else 'no'}.")
    return "\n".join(rows)


def update_readme(path: str, text: str, block: str = "bench") -> None:
    """Replace the text between `<!-- {block}:begin -->` and `<!-- {block}:end -->`."""
    with open(path) as f:
        readme = f.read()
    begin, end = f"<!-- {block}:begin -->", f"<!-- {block}:end -->"
    pattern = re.compile(f"({re.escape(begin)}\n).*?({re.escape(end)})", re.S)
    if not pattern.search(readme):
        raise SystemExit(f"{path} has no {begin} ... {end} block")
    with open(path, "w") as f:
        f.write(pattern.sub(lambda m: m.group(1) + text + "\n" + m.group(2), readme))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(BENCHES), help="subset of codec,train,sample")
    parser.add_argument("--out", default="bench-results.jsonl", help="write the JSON lines here")
    parser.add_argument("--from", dest="from_file", help="read JSON lines instead of running")
    parser.add_argument("--update-readme", metavar="README", help="rewrite its benchmark table")
    parser.add_argument(
        "--isa",
        choices=sorted(ISA_CAPS),
        help="cap the kernel libraries at this ISA (with --update-readme: its own table)",
    )
    args, extra = parser.parse_known_args()
    if args.from_file:
        with open(args.from_file) as f:
            lines = [json.loads(line) for line in f if line.strip()]
    else:
        lines = []
        for name in args.only.split(","):
            lines += run(name, extra if len(args.only.split(",")) == 1 else [], args.isa)
        with open(args.out, "w") as f:
            f.writelines(json.dumps(ln) + "\n" for ln in lines)
    text = table(lines)
    if args.update_readme:
        update_readme(args.update_readme, text, f"bench-{args.isa}" if args.isa else "bench")
    print(text)
    for ln in lines:
        print(json.dumps(ln))


if __name__ == "__main__":
    main()
