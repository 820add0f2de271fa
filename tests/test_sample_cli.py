"""`taming sample` and the image-level sampling API on tiny saved transformer runs.

Each run folder is written the way `taming train` writes one (`configs/*-project.yaml`,
`checkpoints/last.ckpt` with `model.`-prefixed keys and the step count), with random weights:
16 px images, an f2 first stage (8x8 codes, 32 of them), a one-layer GPT.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

from taming.cli import main
from taming.cond import Net2NetTransformer
from taming.pipeline import (
    SampleError,
    complete_image,
    coordinate_map,
    load_condition,
    load_sampling_model,
    make_grid,
    rejection_sample,
    sample_images,
)
from taming.sampling import sample_tokens
from tiny_net2net import CONFIGS, N_LABELS, STEP, tiny_gpt, tiny_vq, write_run


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("runs")
    return {kind: write_run(root, kind) for kind in CONFIGS}


@pytest.fixture(scope="module")
def models(runs):
    return {kind: load_sampling_model(run)[0] for kind, run in runs.items()}


def sample(*args: str) -> int:
    return main(["sample", *args, "--no-progress", "--device", "cpu"])


def pngs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.glob("[0-9]*.png"))


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def image_file(path: Path, size: tuple[int, int] = (16, 16), seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


# -- unconditional / class-conditional layouts -------------------------------------------------


def test_unconditional_layout_grid_and_summary(runs, capsys):
    run = runs["uncond"]
    assert sample("-r", str(run), "-n", "5", "--batch_size", "2", "-k", "10") == 0
    folder = run / "samples" / "top_k_10_temp_1.00_top_p_1.0" / str(STEP)
    files = pngs(folder)
    assert [p.name for p in files] == [f"{i:06}.png" for i in range(5)]
    for p in files:
        with Image.open(p) as img:
            assert img.size == (16, 16) and img.mode == "RGB"
    with Image.open(folder / "grid.png") as grid:
        assert grid.size == (3 * 18 + 2, 2 * 18 + 2)  # 5 images, 3 per row, 2 px padding
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["images"] == 5 and summary["global_step"] == STEP and summary["top_k"] == 10
    assert str(folder) in capsys.readouterr().out


def test_same_seed_same_pngs_other_seed_other_pngs(runs, tmp_path):
    run = str(runs["uncond"])
    for out, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        assert sample("-r", run, "-o", str(tmp_path / out), "-n", "3", "--seed", seed) == 0
    sub = Path("samples") / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    a, b, c = (pngs(tmp_path / out / sub) for out in "abc")
    assert len(a) == 3
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    assert [p.read_bytes() for p in a] != [p.read_bytes() for p in c]


def test_class_conditional_n_per_class_seeded_per_class(runs, tmp_path):
    run = str(runs["class"])
    assert sample("-r", run, "-o", str(tmp_path / "all"), "--classes", "0,2", "-n", "3") == 0
    folder = tmp_path / "all" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    for k in ("0", "2"):
        assert len(pngs(folder / k)) == 3 and (folder / k / "grid.png").is_file()
    assert not (folder / "1").exists()
    # class 2 alone: the same images as within the two-class run
    assert sample("-r", run, "-o", str(tmp_path / "one"), "--classes", "2", "-n", "3") == 0
    one = tmp_path / "one" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP) / "2"
    assert [p.read_bytes() for p in pngs(one)] == [p.read_bytes() for p in pngs(folder / "2")]
    assert [p.read_bytes() for p in pngs(folder / "0")] != [p.read_bytes() for p in pngs(one)]


def test_all_classes_by_default(runs, tmp_path):
    assert sample("-r", str(runs["class"]), "-o", str(tmp_path), "-n", "1", "--no-grid") == 0
    folder = tmp_path / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    assert sorted(p.name for p in folder.iterdir() if p.is_dir()) == ["0", "1", "2", "3"]
    assert not list(folder.rglob("grid.png"))


# -- the Python API ----------------------------------------------------------------------------


def test_sample_images_equals_token_sampler_and_cfg_one_is_plain(models):
    model = models["class"]
    images, tokens = sample_images(
        model, 4, cond=2, top_k=8, top_p=0.9, generator=gen(5), return_tokens=True, batch_size=4
    )
    assert images.shape == (4, 3, 16, 16) and tokens.shape == (4, 8, 8)
    assert float(images.min()) >= -1 and float(images.max()) <= 1
    c = torch.full((4, 1), 2)
    expected = sample_tokens(model.transformer, c, 64, top_k=8, top_p=0.9, generator=gen(5))
    assert torch.equal(tokens.reshape(4, -1), expected)
    same = sample_images(
        model, 4, cond=2, top_k=8, top_p=0.9, generator=gen(5), cfg_scale=1.0, return_tokens=True
    )[1]
    assert torch.equal(same, tokens)
    guided = sample_images(
        model, 4, cond=2, top_k=8, generator=gen(5), cfg_scale=3.0, return_tokens=True
    )[1]
    assert guided.shape == tokens.shape and not torch.equal(guided, tokens)
    # one condition per sample, in batches: reproducible with the same generator
    a = sample_images(model, 3, cond=[0, 1, 3], generator=gen(1), batch_size=2)
    b = sample_images(model, 3, cond=[0, 1, 3], generator=gen(1), batch_size=2)
    assert torch.equal(a, b)


def test_cfg_scale_one_cli_equals_plain(runs, tmp_path):
    run = str(runs["class"])
    assert sample("-r", run, "-o", str(tmp_path / "a"), "--classes", "1", "-n", "2") == 0
    argv = ["-r", run, "-o", str(tmp_path / "b"), "--classes", "1", "-n", "2", "--cfg-scale", "1"]
    assert sample(*argv) == 0
    sub = Path("samples") / "top_k_250_temp_1.00_top_p_1.0" / str(STEP) / "1"
    a, b = pngs(tmp_path / "a" / sub), pngs(tmp_path / "b" / sub)
    assert [p.read_bytes() for p in a] == [p.read_bytes() for p in b]
    argv = ["-r", run, "-o", str(tmp_path / "c"), "--classes", "1", "-n", "2", "--cfg-scale", "2"]
    assert sample(*argv) == 0
    guided = tmp_path / "c" / "samples" / "top_k_250_temp_1.00_top_p_1.0_cfg_2" / str(STEP)
    assert len(pngs(guided / "1")) == 2


@pytest.mark.parametrize("fmt", ["bf16", "w8a8"])
def test_low_precision_decode_weights_are_opt_in(runs, tmp_path, monkeypatch, fmt):
    from taming.transformer.gpt import GPT

    formats, probed_rows = [], []
    real = GPT.to_low_precision
    monkeypatch.setattr(
        GPT,
        "to_low_precision",
        lambda self, fmt, rows=1: formats.append(fmt) or real(self, fmt, rows=rows),
    )
    speeds = {"fast": (2.0, 1.0), "slow": (1.0, 2.0)}  # (fp32 s, fmt s) of the speed probe
    probe = "fast"
    monkeypatch.setattr(
        "taming.transformer.gpt.step_seconds",
        lambda gpt, f, rows: probed_rows.append(rows) or speeds[probe],
    )
    run = str(runs["uncond"])
    assert sample("-r", run, "-o", str(tmp_path), "-n", "2") == 0
    assert formats == []  # fp32 unless asked
    assert sample("-r", run, "-o", str(tmp_path / "a"), "-n", "2", "--decode-weights", fmt) == 0
    assert formats == [fmt]
    assert probed_rows == [2]  # timed at the batch it decodes (2 images, default batch 25)
    folder = tmp_path / "a" / "samples" / f"top_k_250_temp_1.00_top_p_1.0_{fmt}" / str(STEP)
    assert len(pngs(folder)) == 2
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["decode_weights"] == summary["decode_weights_requested"] == fmt
    probe = "slow"  # where the probe finds the format slower, fp32 is used and recorded
    assert sample("-r", run, "-o", str(tmp_path / "b"), "-n", "2", "--decode-weights", fmt) == 0
    folder = tmp_path / "b" / "samples" / f"top_k_250_temp_1.00_top_p_1.0_{fmt}" / str(STEP)
    summary = json.loads((folder / "summary.json").read_text())
    assert (summary["decode_weights"], summary["decode_weights_requested"]) == ("fp32", fmt)


def test_sliding_window_two_times_wide(runs, models, tmp_path):
    model = models["uncond"]
    images, tokens = sample_images(model, 2, size=(16, 32), generator=gen(0), return_tokens=True)
    assert images.shape == (2, 3, 16, 32) and tokens.shape == (2, 8, 16)
    again = sample_images(model, 2, size=(16, 32), generator=gen(0), return_tokens=True)[1]
    assert torch.equal(again, tokens)
    assert sample("-r", str(runs["uncond"]), "-o", str(tmp_path), "-n", "2", "--size", "16,32") == 0
    folder = tmp_path / "samples" / "top_k_250_temp_1.00_top_p_1.0_16x32" / str(STEP)
    with Image.open(pngs(folder)[0]) as img:
        assert img.size == (32, 16)  # (W, H)
    assert json.loads((folder / "summary.json").read_text())["size"] == [16, 32]
    # class prefix + sliding window
    assert sample_images(models["class"], 1, cond=3, size=(32, 32)).shape == (1, 3, 32, 32)


def test_completion_keeps_the_given_tokens(runs, models, tmp_path):
    model = models["uncond"]
    img = image_file(tmp_path / "photo.png")
    x = torch.from_numpy(np.asarray(Image.open(img), dtype=np.float32) / 127.5 - 1)
    x = x.permute(2, 0, 1)[None]
    _, z = model.encode_to_z(x)
    z = z.reshape(8, 8)
    images, tokens, known = complete_image(model, x, 3, keep_top=0.5, generator=gen(0))
    assert images.shape == (3, 3, 16, 16) and known.shape == (8, 8)
    assert known[:4].all() and not known[4:].any()
    assert (tokens[:, known] == z[known]).all()
    assert not (tokens[:, ~known] == z[~known]).all()  # the rest was sampled
    # a mask (white = keep) at pixel resolution: keep the left half
    mask = torch.zeros(16, 16)
    mask[:, :8] = 1
    _, tokens, known = complete_image(model, x, 2, mask=mask, generator=gen(0))
    assert known[:, :4].all() and not known[:, 4:].any()
    assert (tokens[:, known] == z[known]).all()

    # CLI: tokens.pt records what was kept; the grid shows input, kept part, samples
    argv = ["-r", str(runs["uncond"]), "-o", str(tmp_path / "out"), "--complete", str(img)]
    assert sample(*argv, "--keep-top", "0.25", "-n", "2") == 0
    folder = tmp_path / "out" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    folder = folder / "complete_photo"
    saved = torch.load(folder / "tokens.pt")
    assert int(saved["known"].sum()) == 16
    assert (saved["tokens"][:, saved["known"]] == z[saved["known"]]).all()
    assert len(pngs(folder)) == 2 and (folder / "grid.png").is_file()
    mask_png = tmp_path / "mask.png"
    Image.fromarray((mask.numpy() * 255).astype(np.uint8)).save(mask_png)
    assert sample(*argv, "--mask", str(mask_png), "-n", "1") == 2  # the folder holds samples
    assert sample(*argv, "--mask", str(mask_png), "-n", "1", "--overwrite") == 0

    # class-conditional completion (per class in the CLI)
    cls = models["class"]
    _, zc = cls.encode_to_z(x)
    _, tokens, known = complete_image(cls, x, 2, cond=3, keep_top=0.5, generator=gen(0))
    assert (tokens[:, known] == zc.reshape(8, 8)[known]).all()
    argv = ["-r", str(runs["class"]), "-o", str(tmp_path / "cls"), "--complete", str(img)]
    assert sample(*argv, "--classes", "1,3", "-n", "1") == 0
    folder = tmp_path / "cls" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    assert len(pngs(folder / "complete_photo" / "3")) == 1

    # wider than the window: sliding-window completion keeps the tokens too
    wide = image_file(tmp_path / "wide.png", size=(32, 16), seed=1)
    xw = torch.from_numpy(np.asarray(Image.open(wide), dtype=np.float32) / 127.5 - 1)
    xw = xw.permute(2, 0, 1)[None]
    _, zw = model.encode_to_z(xw)
    images, tokens, known = complete_image(model, xw, 2, keep_top=0.5, generator=gen(0))
    assert images.shape == (2, 3, 16, 32)
    assert (tokens[:, known] == zw.reshape(8, 16)[known]).all()


def brightness(images: torch.Tensor, class_ids: torch.Tensor | None) -> torch.Tensor:
    """A tiny scorer: mean brightness (plus nothing for the class)."""
    assert images.ndim == 4 and images.shape[1] == 3
    assert class_ids is None or class_ids.shape == (images.shape[0],)
    return images.mean(dim=(1, 2, 3))


def test_rejection_keeps_the_top_fraction(runs, models, tmp_path):
    model = models["class"]
    kept, _, scores, info = rejection_sample(
        model, 2, brightness, 0.25, cond=1, generator=gen(3), batch_size=3
    )
    assert info["candidates"] == 8 and info["kept"] == 2 and info["acceptance_rate"] == 0.25
    candidates = sample_images(model, 8, cond=1, generator=gen(3), batch_size=3)
    all_scores = brightness(candidates, None)
    top = torch.topk(all_scores, 2)
    assert torch.allclose(scores, top.values)
    assert torch.equal(kept, candidates[top.indices])

    scorer = f"{Path(__file__)}:brightness"
    argv = ["-r", str(runs["class"]), "-o", str(tmp_path), "--classes", "0,1", "-n", "2"]
    assert sample(*argv, "--rejection", scorer, "--acceptance", "0.5") == 0
    folder = tmp_path / "samples" / "top_k_250_temp_1.00_top_p_1.0_rejection_0.5" / str(STEP)
    summary = json.loads((folder / "summary.json").read_text())
    for k in ("0", "1"):
        info = summary["rejection"]["per_class"][k]
        assert info["candidates"] == 4 and info["kept"] == 2
        assert info["scores"] == sorted(info["scores"], reverse=True)
        assert len(pngs(folder / k)) == 2


def test_segmentation_png_condition(runs, models, tmp_path):
    rng = np.random.default_rng(0)
    labels = tmp_path / "labels.png"
    Image.fromarray(rng.integers(0, N_LABELS, (16, 16), dtype=np.uint8), mode="L").save(labels)
    cond = load_condition(models["seg"], labels)
    assert cond.shape == (1, N_LABELS, 16, 16) and torch.equal(cond.sum(1), torch.ones(1, 16, 16))
    run = str(runs["seg"])
    assert sample("-r", run, "-o", str(tmp_path / "out"), "--condition", str(labels)) == 0
    folder = tmp_path / "out" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP)
    folder = folder / "cond_labels"
    assert len(pngs(folder)) == 4 and (folder / "condition.png").is_file()
    # a larger label map: the sample follows its size, sampled with a sliding window over
    # the condition's codes
    big = tmp_path / "big.png"
    Image.fromarray(rng.integers(0, N_LABELS, (32, 24), dtype=np.uint8), mode="L").save(big)
    assert sample("-r", run, "-o", str(tmp_path / "big"), "--condition", str(big), "-n", "1") == 0
    (png,) = pngs(
        tmp_path / "big" / "samples" / "top_k_250_temp_1.00_top_p_1.0" / str(STEP) / "cond_big"
    )
    with Image.open(png) as img:
        assert img.size == (24, 32)
    images = sample_images(
        models["seg"], 1, cond=load_condition(models["seg"], big), generator=gen()
    )
    assert images.shape == (1, 3, 32, 24)


def test_guidance_through_the_sliding_window(runs, models, tmp_path, monkeypatch):
    import taming.cond.generation as generation

    seen = []
    real = generation.sample_sliding_window

    def spy(*args, **kwargs):
        seen.append(kwargs["null_cond"])
        return real(*args, **kwargs)

    monkeypatch.setattr(generation, "sample_sliding_window", spy)
    seg = models["seg"]
    rng = np.random.default_rng(1)
    cond = torch.nn.functional.one_hot(torch.from_numpy(rng.integers(0, N_LABELS, (32, 24))))
    cond = cond.permute(2, 0, 1)[None].float()  # (1, n_labels, 32, 24)
    plain = sample_images(seg, 1, cond=cond, generator=gen(3))
    guided = sample_images(seg, 1, cond=cond, cfg_scale=2.0, generator=gen(3))
    assert guided.shape == plain.shape == (1, 3, 32, 24) and not torch.equal(guided, plain)
    window = 8 * 8  # the seg model's training window, in tokens
    assert seen[0] is None and torch.equal(seen[1], torch.full((1, window), seg.null_token))
    # class prefix + guidance + a 2x larger grid, through the CLI
    run = str(runs["class"])
    argv = ["-r", run, "-o", str(tmp_path), "--classes", "1", "-n", "1", "--cfg-scale", "2"]
    assert sample(*argv, "--size", "32,32") == 0
    assert torch.equal(seen[-1], torch.full((1, 1), models["class"].null_token))
    folder = tmp_path / "samples" / "top_k_250_temp_1.00_top_p_1.0_cfg_2_32x32" / str(STEP) / "1"
    with Image.open(pngs(folder)[0]) as img:
        assert img.size == (32, 32)


def test_depth_condition_files(tmp_path):
    model = Net2NetTransformer(
        tiny_gpt(block_size=128), tiny_vq(), tiny_vq(in_channels=1), cond_stage_key="depth"
    ).eval()
    gray16 = tmp_path / "d16.png"
    arr = np.linspace(1000, 40000, 16 * 20).reshape(16, 20).astype(np.uint16)
    Image.fromarray(arr).save(gray16)
    d = load_condition(model, gray16)
    assert d.shape == (1, 1, 16, 20)
    assert float(d.min()) == pytest.approx(-1) and float(d.max()) == pytest.approx(1)
    rgba = tmp_path / "rgba.png"
    depth = np.linspace(0.5, 3.0, 16 * 16, dtype="<f4").reshape(16, 16)
    Image.fromarray(depth.view(np.uint8).reshape(16, 16, 4), mode="RGBA").save(rgba)
    d = load_condition(model, rgba)
    assert d.shape == (1, 1, 16, 16)
    assert float(d[0, 0, 0, 0]) == pytest.approx(-1) and float(d[0, 0, -1, -1]) == pytest.approx(1)
    assert sample_images(model, 2, cond=d, generator=gen()).shape == (2, 3, 16, 16)


def test_coordinate_models_make_their_coordinate_map():
    """FacesHQ-style `CoordStage` models: no condition needed, at any size."""
    stage = {
        "target": "taming.modules.misc.coord.CoordStage",
        "params": {"n_embed": 32, "down_factor": 2},
    }
    model = Net2NetTransformer(tiny_gpt(block_size=128), tiny_vq(), stage, cond_stage_key="coord")
    model.eval()
    _, c = model.encode_to_c(coordinate_map((16, 16)))
    assert c.shape == (1, 64) and int(c.min()) >= 0 and int(c.max()) == 31
    assert bool((c[0, 1:] >= c[0, :-1]).all())  # raster order: non-decreasing
    images, tokens = sample_images(model, 2, generator=gen(), return_tokens=True)
    assert images.shape == (2, 3, 16, 16)
    c2 = model.encode_to_c(coordinate_map((16, 16)))[1].expand(2, -1)
    expected = sample_tokens(model.transformer, c2, 64, generator=gen())
    assert torch.equal(tokens.reshape(2, -1), expected)
    assert sample_images(model, 1, size=(16, 32)).shape == (1, 3, 16, 32)  # sliding window


def test_context_longer_than_block_size_is_a_sample_error():
    model = Net2NetTransformer(
        tiny_gpt(block_size=100), tiny_vq(), tiny_vq(in_channels=1), cond_stage_key="depth"
    ).eval()
    with pytest.raises(SampleError, match="need 127 tokens of context.*block_size=100"):
        sample_images(model, 1, cond=torch.zeros(1, 1, 16, 16))


def test_make_grid():
    x = torch.zeros(5, 3, 4, 6)
    grid = make_grid(x, nrow=2, padding=1)
    assert grid.size == (2 * 7 + 1, 3 * 5 + 1)
    assert grid.getpixel((0, 0)) == (255, 255, 255) and grid.getpixel((1, 1)) == (128, 128, 128)


# -- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "args", "expected"),
    [
        ("class", ["--classes", "9"], "class id 9 is out of range [0, 4)"),
        ("class", ["--classes", "a,b"], "--classes: expected"),
        ("uncond", ["--classes", "1"], "not class-conditional"),
        ("uncond", ["--condition", "{png}"], "unconditional"),
        ("uncond", ["--cfg-scale", "2"], "needs a conditional model"),
        ("uncond", ["--size", "15,16"], "not a positive multiple of the first stage's factor f=2"),
        ("uncond", ["--size", "8,16"], "smaller than the training window"),
        ("uncond", ["--condition", "missing.png"], "file not found: missing.png"),
        ("uncond", ["--mask", "{png}"], "--mask needs --complete"),
        ("uncond", ["--rejection", "nomodule_xyz:f"], "cannot import 'nomodule_xyz'"),
        ("uncond", ["--decode-weights", "bf16", "--no-cache"], "drop --no-cache"),
        ("seg", [], "give --condition FILE"),
        ("seg", ["--condition", "{bad_labels}"], "label 9 >= n_labels=5"),
    ],
)
def test_user_errors_are_one_line(runs, tmp_path, capsys, kind, args, expected):
    png = image_file(tmp_path / "x.png")
    bad = tmp_path / "bad.png"
    Image.fromarray(np.full((16, 16), 9, dtype=np.uint8), mode="L").save(bad)
    args = [a.format(png=png, bad_labels=bad) for a in args]
    assert sample("-r", str(runs[kind]), "-o", str(tmp_path), "-n", "1", *args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert err.startswith("taming sample: error:") and expected in err


def test_not_a_transformer_and_missing_run(tmp_path, capsys):
    cfg = tmp_path / "vq.yaml"
    cfg.write_text(yaml.safe_dump({"model": tiny_vq()}))
    assert sample("-r", str(cfg)) == 2
    assert "needs a transformer" in capsys.readouterr().err
    assert sample("-r", str(tmp_path / "nope")) == 2
    assert "not found" in capsys.readouterr().err
    with pytest.raises(SampleError, match="eval mode"):
        m = Net2NetTransformer(tiny_gpt(), tiny_vq(), "__is_unconditional__")
        sample_images(m.train(), 1)
