"""Reconstruction metrics, `taming eval recon`, `taming reconstruct` on a tiny random VQGAN.

The run folder is written as `taming train` writes one (config + `checkpoints/last.ckpt`):
16 px images, an f2 first stage (8x8 codes of 32).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image

import taming
from inception_testing import TF_FILE, write_images, write_weights
from taming.cli import main
from taming.metrics.codebook import codebook_stats, histogram
from taming.metrics.extractor import InceptionExtractor
from taming.metrics.fid import frechet_distance_features
from taming.metrics.image import psnr_per_image, ssim_per_image
from taming.metrics.inception import FIDInceptionV3
from taming.metrics.reconstruction import (
    encode_decode,
    evaluate_reconstruction,
    report_markdown,
    write_reconstruction_report,
)
from taming.metrics.sources import to_uint8

VQ = {
    "target": "taming.models.vqgan.VQModel",
    "params": {
        "embed_dim": 8,
        "n_embed": 32,
        "ddconfig": {
            "double_z": False,
            "z_channels": 8,
            "resolution": 16,
            "in_channels": 3,
            "out_ch": 3,
            "ch": 32,
            "ch_mult": [1, 2],
            "num_res_blocks": 1,
            "attn_resolutions": [],
            "dropout": 0.0,
        },
        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
    },
}


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("vq") / "2026-01-01T00-00-00_vq"
    (root / "configs").mkdir(parents=True)
    (root / "checkpoints").mkdir()
    (root / "configs" / "2026-01-01T00-00-00-project.yaml").write_text(
        yaml.safe_dump({"model": VQ})
    )
    torch.manual_seed(0)
    model = taming.instantiate_from_config(VQ)
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save({"state_dict": state, "global_step": 3}, root / "checkpoints" / "last.ckpt")
    return root


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    return write_images(tmp_path_factory.mktemp("imgs") / "val", 6, size=(20, 16), seed=3)


@pytest.fixture(scope="module")
def model(run):
    return taming.load(run)


def test_report_agrees_with_direct_computation(model, images):
    res = evaluate_reconstruction(model, images, size=16, batch_size=4, worst=3, progress=False)
    r = res.report
    from taming.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(str(images), size=16)
    x = torch.stack([torch.from_numpy(ds[i]["image"]).permute(2, 0, 1) for i in range(6)])
    xrec, codes = encode_decode(model, x)
    assert codes.shape == (6, 8, 8)
    p = psnr_per_image(xrec, x)
    assert r["images"] == 6 and r["size"] == [16, 16] and r["tokens_per_image"] == 64
    assert r["psnr"] == pytest.approx(float(p.mean()), rel=1e-6)
    assert r["ssim"] == pytest.approx(float(ssim_per_image(xrec, x).mean()), rel=1e-6)
    counts = histogram(codes, 32)
    usage, perplexity = codebook_stats(counts)
    assert r["codebook_usage"] == pytest.approx(float(usage))
    assert r["perplexity"] == pytest.approx(float(perplexity))
    assert r["dead_codes"] == int((counts == 0).sum()) == round(32 * (1 - r["codebook_usage"]))
    assert r["bits_per_image"] == pytest.approx(64 * 5.0)  # log2(32) = 5 bits per token
    assert r["entropy_bits_per_image"] == pytest.approx(64 * math.log2(float(perplexity)))
    assert "rfid" not in r and "lpips" not in r
    worst = [v for v, *_ in res.worst]
    assert worst == sorted(p.tolist())[:3]  # the three lowest PSNRs, worst first


def test_rfid_and_lpips_when_given(model, images):
    from taming.losses.lpips import LPIPS

    torch.manual_seed(1)
    ref = FIDInceptionV3(input_size=75)
    ex = InceptionExtractor.from_reference(ref, device="cpu")
    lp = LPIPS(pretrained=False)
    res = evaluate_reconstruction(model, images, size=16, extractor=ex, lpips=lp, progress=False)
    from taming.data.folder import ImageFolderDataset

    ds = ImageFolderDataset(str(images), size=16)
    x = torch.stack([torch.from_numpy(ds[i]["image"]).permute(2, 0, 1) for i in range(6)])
    xrec, _ = encode_decode(model, x)
    f_in, f_rec = ex(to_uint8(x))[0].numpy(), ex(to_uint8(xrec))[0].numpy()
    assert res.report["rfid"] == pytest.approx(frechet_distance_features(f_rec, f_in), rel=1e-5)
    assert res.report["lpips"] == pytest.approx(float(lp(xrec, x).mean()), rel=1e-5)


def test_written_report(model, images, tmp_path):
    res = evaluate_reconstruction(model, images, size=16, worst=4, progress=False)
    files = write_reconstruction_report(res, tmp_path, pairs_per_row=2)
    assert json.loads(files["json"].read_text()) == res.report
    md = files["markdown"].read_text()
    assert "| PSNR (dB) |" in md and "| dead codes |" in md and md == report_markdown(res.report)
    with Image.open(files["worst"]) as grid:  # 4 pairs, 2 per row: 4 x 2 tiles of 16 px
        assert grid.size == (4 * 18 + 2, 2 * 18 + 2)
    assert len(json.loads(files["per_image"].read_text())) == 6


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_cli_eval_recon_writes_the_report(run, images, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAMING_HOME", str(tmp_path / "home"))  # no LPIPS VGG weights there
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    w = write_weights(tmp_path / TF_FILE)
    out = tmp_path / "report"
    args = ["eval", "recon", "--model", str(run), "--data", str(images), "--size", "16"]
    assert main([*args, "-o", str(out), "--json", "--no-progress", "--device", "cpu"]) == 0
    r = _last_json(capsys.readouterr().out)
    for key in ("psnr", "ssim", "codebook_usage", "perplexity", "dead_codes"):
        assert key in r
    assert "rfid" not in r and "lpips" not in r
    assert (out / "report.json").is_file() and (out / "report.md").is_file()
    assert (out / "worst.png").is_file()
    # with the weights: rFID (the real 299-px network on 6 + 6 images) and LPIPS
    from safetensors.torch import save_file

    from taming.losses.lpips import LPIPS

    (tmp_path / "home").mkdir(exist_ok=True)
    vgg = LPIPS(pretrained=False).net.state_dict()
    save_file({f"net.{k}": v for k, v in vgg.items()}, tmp_path / "home" / "vgg16.safetensors")
    rc = main([*args, "-o", str(out), "--json", "--no-progress", "--inception-weights", str(w)])
    assert rc == 0
    r2 = _last_json(capsys.readouterr().out)
    assert r2["rfid"] > 0 and r2["lpips"] >= 0 and r2["psnr"] == pytest.approx(r["psnr"])


def test_cli_eval_recon_missing_inception_file_fails_first(run, images, tmp_path, capsys):
    args = ["eval", "recon", "--model", str(run), "--data", str(images)]
    assert main([*args, "--inception-weights", str(tmp_path / "none.pth")]) == 2
    assert "none.pth" in capsys.readouterr().err


def test_cli_reconstruct_folder_and_file(run, images, tmp_path, capsys):
    one = images / "000.png"
    out = tmp_path / "out"
    rc = main(["reconstruct", "--model", str(run), str(images), str(one), "-o", str(out),
               "--json", "--device", "cpu"])  # fmt: skip
    assert rc == 0
    s = _last_json(capsys.readouterr().out)
    assert s["images"] == 7
    model = taming.load(run)
    for name in sorted(p.stem for p in images.glob("*.png")):
        rec = out / "val" / f"{name}.png"
        with Image.open(rec) as im:
            assert im.size == (20, 16)  # kept size (multiples of f = 2)
        codes = np.load(out / "val" / f"{name}_codes.npy")
        assert codes.shape == (8, 10) and codes.dtype == np.int64
        with Image.open(out / "val" / f"{name}_pair.png") as pair:
            assert pair.size == (2 * 22 + 2, 16 + 4)
        # the codes decode to the written reconstruction (up to PNG rounding)
        dec = model.decode_code(torch.from_numpy(codes)[None]).clamp(-1, 1)[0]
        png = torch.from_numpy(np.asarray(Image.open(rec), dtype=np.float32)).permute(2, 0, 1)
        assert (png / 127.5 - 1 - dec).abs().max() <= 1 / 127.5 + 1e-5
    assert (out / "000.png").is_file() and (out / "grid.png").is_file()
    assert (out / "summary.json").is_file()


@pytest.mark.slow  # trains the demo (minutes); the random run above covers the default tests
def test_cli_eval_recon_on_the_demos_checkpoint(tmp_path, capsys):
    pytest.importorskip("skimage")
    demo = tmp_path / "demo"
    argv = ["demo", "--out", str(demo), "--steps", "2", "--size", "32", "--transformer-steps", "1"]
    assert main([*argv, "--no-progress"]) == 0
    capsys.readouterr()
    images = write_images(tmp_path / "imgs", 4, size=(40, 32), seed=9)
    out = tmp_path / "report"
    args = ["eval", "recon", "--model", str(demo), "--data", str(images), "--size", "32"]
    assert main([*args, "-o", str(out), "--json", "--no-progress", "--device", "cpu"]) == 0
    r = _last_json(capsys.readouterr().out)
    assert r["images"] == 4 and r["n_codes"] == 256 and r["size"] == [32, 32]
    assert 0 < r["codebook_usage"] <= 1 and r["dead_codes"] == 256 - round(
        256 * r["codebook_usage"]
    )
    assert json.loads((out / "report.json").read_text())["psnr"] == r["psnr"]
    assert (out / "report.md").is_file() and (out / "worst.png").is_file()
