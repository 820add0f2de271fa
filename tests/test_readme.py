"""The README's "Train on your own photos" section, run as written (as vector-quantize-pytorch's
test_readme.py runs its README): a folder of photos -> `taming train` (tokenizer) -> `taming
train` (a transformer naming that run) -> `taming sample` (plain, `--size`, `--complete`) ->
`taming.load` + `taming.images` in Python. No YAML is written: only the documented commands.

The bash block runs in a subprocess with one change, the step counts (`--max_steps 2`); the
Python block runs unchanged. Then `taming sample --size` runs once more with another size:
both outputs must remain, each `summary.json` recording its size.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SECTION = "## Train on your own photos"


def section_blocks(lang: str) -> list[str]:
    """The ```lang code blocks of the README's own-photos section."""
    text = (REPO / "README.md").read_text(encoding="utf-8")
    start = text.index(SECTION)
    end = text.find("\n## ", start + len(SECTION))
    body = text[start : end if end >= 0 else len(text)]
    return re.findall(rf"```{lang}\n(.*?)```", body, flags=re.S)


def commands(block: str) -> list[list[str]]:
    """The `taming ...` command lines of a bash block (continuations joined), as argv lists."""
    joined = block.replace("\\\n", " ")
    lines = [ln.split("#", 1)[0].strip() for ln in joined.splitlines()]
    return [shlex.split(ln)[1:] for ln in lines if ln.startswith("taming ")]


def make_photos(folder: Path, n: int = 12) -> None:
    """Photo-like test images of assorted sizes (smooth colour fields plus texture), one of
    them `beach.jpg` as the README's completion example names it."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        h, w = int(rng.integers(72, 130)), int(rng.integers(72, 160))
        y, x = np.mgrid[0:h, 0:w] / max(h, w)
        base = np.stack([np.sin(6 * x + i), np.cos(5 * y - i), np.sin(4 * (x + y) + 2 * i)], -1)
        img = (127.5 * (base + 1) + rng.normal(0, 12, (h, w, 3))).clip(0, 255).astype(np.uint8)
        name = "beach.jpg" if i == 0 else f"IMG_{i:04d}.{'jpg' if i % 2 else 'png'}"
        Image.fromarray(img).save(folder / name)


def quiet_env() -> dict[str, str]:
    env = dict(os.environ)
    bindir = str(Path(sys.executable).parent)  # the venv's `taming` console script
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    env["OMP_NUM_THREADS"] = "1"  # tiny models on shared cores: one thread is fastest
    env["PYTHONPATH"] = str(REPO / "src") + os.pathsep + env.get("PYTHONPATH", "")
    return env


def test_readme_commands_parse():
    """Fast: every `taming` line of the section parses with the real CLI parser."""
    from taming.cli import build_parser

    [bash] = section_blocks("bash")
    found = commands(bash)
    assert [c[0] for c in found] == ["train", "train", "sample", "sample", "sample"]
    parser = build_parser()
    for argv in found:
        args = parser.parse_args([a.replace("$", "") for a in argv])
        assert args.func is not None
    assert "--first-stage" in found[1] and "--data" in found[0]
    assert {"--size", "--complete"} <= {a for c in found[2:] for a in c}
    [python] = section_blocks("python")
    compile(python, "README.md", "exec")


@pytest.mark.slow
def test_readme_own_photos_end_to_end(tmp_path):
    make_photos(tmp_path / "photos")
    (tmp_path / "configs").symlink_to(REPO / "configs")  # "run from the repository root"
    [bash] = section_blocks("bash")
    script = re.sub(r"--max_steps \d+", "--max_steps 2", bash)
    assert script != bash
    env = quiet_env()
    run = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    [python] = section_blocks("python")
    py = subprocess.run(
        [sys.executable, "-c", python], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert py.returncode == 0, py.stderr[-3000:]
    with Image.open(tmp_path / "beach_tokens.png") as im:
        assert im.size == (64, 64)

    # the transformer run states its first stage in the original form, so it loads alone
    [gpt] = sorted((tmp_path / "logs").glob("*_photos_gpt"))
    [project] = sorted((gpt / "configs").glob("*-project.yaml"))
    text = project.read_text()
    assert "run:" not in text and "_photos_vq/checkpoints/last.ckpt" in text

    # sampling again with another size writes a new folder; the earlier outputs remain
    again = subprocess.run(
        ["taming", "sample", "-r", str(gpt), "-n", "2", "--size", "128,64"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-3000:]
    sizes = []
    for summary in sorted(gpt.rglob("summary.json")):
        pngs = [p for p in summary.parent.glob("*.png") if p.name != "grid.png"]
        assert pngs, f"{summary.parent} lost its images"
        sizes.append(json.loads(summary.read_text()).get("size"))
    assert [64, 128] in sizes and [128, 64] in sizes, sizes
    assert [64, 64] in sizes, sizes  # the plain run, at the training size
