"""`taming sample` as a run: fresh output folders, a complete summary, completion at the model's
size, one-line refusals of invalid settings and of oversize requests, `--from-data`, and
`taming.load` of a checkpoint path (issues 9, 10 and 12), on the tiny runs of `tiny_net2net`.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import taming
from taming.cli import main
from taming.config import ConfigError
from taming.images import load as load_image
from tiny_net2net import STEP, build_model, write_run

SETTINGS = "top_k_250_temp_1.00_top_p_1.0"


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(3):
        arr = rng.integers(0, 255, (20, 24, 3), dtype=np.uint8)
        Image.fromarray(arr).save(photos / f"{i}.png")
    data = {
        "data": {
            "target": "main.DataModuleFromConfig",
            "params": {
                "batch_size": 1,
                "validation": {
                    "target": "taming.data.base.ImagePaths",
                    "params": {
                        "paths": [str(photos / f"{i}.png") for i in range(3)],
                        "size": 16,
                        "labels": {"class_label": [2, 0, 3]},
                    },
                },
            },
        }
    }
    return {"uncond": write_run(root, "uncond"), "class": write_run(root / "c", "class", data)}


def sample(*args: str) -> int:
    return main(["sample", *args, "--no-progress", "--device", "cpu"])


def pngs(folder: Path) -> list[Path]:
    return sorted(folder.glob("[0-9]*.png"))


def one_line_error(capsys) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("taming sample: error:"), err
    return err


def test_runs_never_overwrite_and_record_every_setting(runs, tmp_path, capsys):
    run = str(runs["uncond"])
    assert sample("-r", run, "-o", str(tmp_path), "-n", "2", "--seed", "3") == 0
    first = tmp_path / "samples" / SETTINGS / str(STEP)
    before = [p.read_bytes() for p in pngs(first)]
    capsys.readouterr()
    # the same settings again: refused in one line, nothing touched
    assert sample("-r", run, "-o", str(tmp_path), "-n", "2", "--seed", "4") == 2
    assert (
        "already holds samples" in one_line_error(capsys)
        and "--overwrite" in capsys.readouterr().err + "--overwrite"
    )
    assert [p.read_bytes() for p in pngs(first)] == before
    # another size: another folder; both remain
    assert sample("-r", run, "-o", str(tmp_path), "-n", "2", "--size", "16,32") == 0
    wide = tmp_path / "samples" / f"{SETTINGS}_16x32" / str(STEP)
    assert len(pngs(first)) == 2 and len(pngs(wide)) == 2
    s1 = json.loads((first / "summary.json").read_text())
    s2 = json.loads((wide / "summary.json").read_text())
    assert s1["size"] == [16, 16] and s2["size"] == [16, 32]
    assert s2["sliding_window"] is True and s2["latent_grid"] == [8, 16]
    keys = ["top_k", "top_p", "temperature", "cfg_scale", "use_cache", "seed", "batch_size"]
    keys += ["num_samples", "decode_weights", "window", "factor", "tokens_per_image"]
    assert all(key in s1 for key in keys), sorted(set(keys) - set(s1))
    assert s1["seed"] == 3 and s1["tokens_per_image"] == 64 and s2["tokens_per_image"] == 128
    # --overwrite allows it
    assert sample("-r", run, "-o", str(tmp_path), "-n", "2", "--seed", "4", "--overwrite") == 0
    assert [p.read_bytes() for p in pngs(first)] != before


def test_completion_defaults_to_the_training_size_center_cropped(runs, tmp_path, caplog):
    photo = tmp_path / "photo.png"
    rng = np.random.default_rng(5)
    Image.fromarray(rng.integers(0, 255, (30, 50, 3), dtype=np.uint8)).save(photo)  # 50x30
    run = str(runs["uncond"])
    model = build_model("uncond")
    with caplog.at_level("INFO"):
        assert sample("-r", run, "-o", str(tmp_path), "--complete", str(photo), "-n", "1") == 0
    folder = tmp_path / "samples" / SETTINGS / str(STEP) / "complete_photo"
    (png,) = pngs(folder)
    with Image.open(png) as img:
        assert img.size == (16, 16)  # the training size, not the photo's
    # the kept tokens are those of the photo resized to cover 16x16 and cut in the middle
    saved = torch.load(folder / "tokens.pt")
    z = model.encode_codes(load_image(photo, size=16, crop="center"))[0]
    assert (saved["tokens"][0][saved["known"]] == z[saved["known"]]).all()
    assert "tokens each" in caplog.text and "about" in caplog.text  # said before sampling
    # --size: that size, cropped (not squashed)
    argv = ["-r", run, "-o", str(tmp_path), "--complete", str(photo), "-n", "1"]
    assert sample(*argv, "--size", "16,32") == 0
    folder = tmp_path / "samples" / f"{SETTINGS}_16x32" / str(STEP) / "complete_photo"
    saved = torch.load(folder / "tokens.pt")
    z = model.encode_codes(load_image(photo, size=(16, 32), crop="center"))[0]
    assert saved["tokens"].shape == (1, 8, 16)
    assert (saved["tokens"][0][saved["known"]] == z[saved["known"]]).all()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["-t", "nan"], "--temperature must be a finite number"),
        (["-t", "0"], "--temperature must be > 0"),
        (["-p", "inf"], "--top_p must be a finite number"),
        (["-p", "1.5"], "--top_p must be in (0, 1]"),
        (["-k", "-3"], "--top_k must be >= 0"),
        (["--batch_size", "0"], "--batch_size must be >= 1"),
        (["-n", "0"], "-n/--num_samples must be >= 1"),
    ],
)
def test_invalid_settings_are_one_line_exit_2(runs, tmp_path, capsys, args, expected):
    assert sample("-r", str(runs["uncond"]), "-o", str(tmp_path), *args) == 2
    assert expected in one_line_error(capsys)
    assert not (tmp_path / "samples").exists()  # refused before any work


def test_oversize_requests_are_refused_with_the_estimate(runs, tmp_path, capsys):
    run = str(runs["uncond"])
    assert sample("-r", run, "-o", str(tmp_path), "--size", "10000,10000") == 2
    err = one_line_error(capsys)
    assert "25,000,000 tokens per image" in err and "--max-tokens" in err and "GiB" in err
    # the limit is an option: a 2x-wide request under a lowered limit is refused, over it not
    assert sample("-r", run, "-o", str(tmp_path), "--size", "16,32", "--max-tokens", "100") == 2
    assert "128 tokens per image (limit 100" in one_line_error(capsys)
    assert sample("-r", run, "-o", str(tmp_path), "-n", "1", "--size", "16,32") == 0


def test_sampling_from_the_run_datasets_classes(runs, tmp_path):
    run = str(runs["class"])
    assert sample("-r", run, "-o", str(tmp_path), "--from-data", "validation", "-n", "2") == 0
    folder = tmp_path / "samples" / SETTINGS / str(STEP) / "from_validation"
    assert [p.name for p in pngs(folder)] == ["000000.png", "000001.png"]
    assert len(pngs(folder / "inputs")) == 2
    with Image.open(folder / "grid.png") as grid:  # rows of ground truth | sample
        assert grid.size == (2 * 18 + 2, 2 * 18 + 2)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["from_data"] == "validation" and summary["images"] == 2
    # the samples are those of the examples' classes (2, then 0), drawn with one generator
    model = build_model("class")
    from taming.pipeline import sample_images

    gen = torch.Generator().manual_seed(0)
    want = [sample_images(model, 1, cond=c, top_k=250, top_p=1.0, generator=gen) for c in (2, 0)]
    for png, x in zip(pngs(folder), want, strict=True):
        with Image.open(png) as img:
            got = np.asarray(img).astype(np.int16)
        ref = ((x[0].permute(1, 2, 0).numpy() + 1) * 127.5).round().clip(0, 255)
        assert np.abs(got - ref).max() <= 1


def test_from_data_needs_a_split_the_config_has(runs, tmp_path, capsys):
    assert sample("-r", str(runs["class"]), "-o", str(tmp_path), "--from-data", "train") == 2
    err = one_line_error(capsys)
    assert "no data.params.train" in err and "validation" in err


def test_taming_load_reads_checkpoint_paths(runs, tmp_path):
    run = runs["uncond"]
    ckpt = run / "checkpoints" / "last.ckpt"
    model = taming.load(ckpt)  # the config is found in the run folder above
    ref = build_model("uncond")
    assert all(
        torch.equal(a, b) for a, b in zip(model.state_dict().values(), ref.state_dict().values())
    )
    # a .safetensors file with its config beside it
    from safetensors.torch import save_file

    release = tmp_path / "release"
    release.mkdir()
    (release / "config.yaml").write_text(
        (run / "configs" / "2026-01-01T00-00-00-project.yaml").read_text()
    )
    save_file(
        {k: v.contiguous() for k, v in ref.state_dict().items()}, release / "weights.safetensors"
    )
    loaded = taming.load(release / "weights.safetensors")
    assert torch.equal(loaded.transformer.head.weight, ref.transformer.head.weight)
    # a lone checkpoint: one line that says what is needed
    lone = tmp_path / "lone" / "model.ckpt"
    lone.parent.mkdir()
    lone.write_bytes(ckpt.read_bytes())
    with pytest.raises(ConfigError, match="no config beside this checkpoint") as e:
        taming.load(lone)
    assert "\n" not in str(e.value) and "config.yaml" in str(e.value)


def test_readme_sampling_example_runs_on_the_cpu(runs, tmp_path):
    """The README's Python sampling example, with the tiny class-conditional run."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    start = readme.index("**Python API** (`taming.pipeline`")
    block = readme[
        readme.index("```python", start) + len("```python") : readme.index(
            "```\n", readme.index("```python", start)
        )
    ]
    code_only = [line.split("#")[0] for line in block.splitlines()]
    assert not any("cuda" in line for line in code_only)  # runs on a CPU as written
    code = block.replace("logs/2021-04-03T19-39-50_cin_transformer", str(runs["class"]))
    code = (
        code.replace("cond=281", "cond=1")
        .replace("cond=970", "cond=2")
        .replace("photo.jpg", str(tmp_path / "p.png"))
    )
    code = code.replace("size=(256, 512)", "size=(16, 32)").replace("size=256", "size=16")
    Image.fromarray(np.zeros((20, 30, 3), np.uint8)).save(tmp_path / "p.png")
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
