"""`taming clip` (VQGAN+CLIP) with a tiny randomly initialised `transformers` CLIP.

The CLIP and its tokenizer are built here and written with `save_pretrained` (the layout real
CLIP folders have); a tiny random VQGAN run folder is the first stage. No download anywhere.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
import yaml
from PIL import Image

from taming.autoencoder import VQModel
from taming.cli import main
from taming.clip import Cutouts, load_clip, parse_prompts, spherical_distance
from taming.clip.perceptor import ClipError

transformers = pytest.importorskip("transformers")

CLIP_SIZE = 32


def tiny_vq_params() -> dict:
    return {
        "embed_dim": 8,
        "n_embed": 64,
        "ddconfig": {
            "double_z": False,
            "z_channels": 8,
            "resolution": 32,
            "in_channels": 3,
            "out_ch": 3,
            "ch": 32,
            "ch_mult": [1, 2],
            "num_res_blocks": 1,
            "attn_resolutions": [],
            "dropout": 0.0,
        },
        "lossconfig": None,
    }


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory) -> Path:
    """A tiny random CLIP + a character-level CLIP BPE tokenizer, saved with save_pretrained."""
    from transformers import CLIPConfig, CLIPModel, CLIPTokenizer

    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for word in (letters, [c + "</w>" for c in letters]):
        for c in word:
            vocab[c] = len(vocab)
    tok = CLIPTokenizer(vocab=vocab, merges=[])
    torch.manual_seed(0)
    text = dict(
        vocab_size=len(vocab),
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=32,
        bos_token_id=0,
        eos_token_id=1,
        pad_token_id=1,
    )
    vision = dict(
        hidden_size=32,
        intermediate_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        image_size=CLIP_SIZE,
        patch_size=8,
    )
    model = CLIPModel(CLIPConfig(text_config=text, vision_config=vision, projection_dim=16))
    out = tmp_path_factory.mktemp("clip") / "tiny-clip"
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("vq") / "run"
    run.mkdir()
    params = tiny_vq_params()
    (run / "config.yaml").write_text(
        yaml.safe_dump({"model": {"target": "taming.models.vqgan.VQModel", "params": params}})
    )
    torch.manual_seed(1)
    torch.save({"state_dict": VQModel(**params).state_dict()}, run / "model.ckpt")
    return run


def test_spherical_distance_closed_form():
    a = torch.tensor([[1.0, 0.0], [0.0, 3.0]], dtype=torch.float64)
    b = torch.tensor([[1.0, 0.0], [-2.0, 0.0]], dtype=torch.float64)
    d = spherical_distance(a, b)
    # the angle between unit vectors is theta; 2 * arcsin(chord / 2) = theta, so d = theta^2 / 2
    want = torch.tensor([[0.0, math.pi], [math.pi / 2, math.pi / 2]], dtype=torch.float64) ** 2 / 2
    torch.testing.assert_close(d, want, rtol=1e-12, atol=1e-12)


def test_parse_prompts_weights_and_colons():
    got = [(p.text, p.weight) for p in parse_prompts("a red bird|sky:0.5|blur:-1|time: 10:30")]
    assert got == [("a red bird", 1.0), ("sky", 0.5), ("blur", -1.0), ("time: 10", 30.0)]
    with pytest.raises(ValueError):
        parse_prompts("a||b")


def test_cutouts_full_view_is_the_image():
    # a cutout with scale 1, no offset, flip, rotation, jitter or noise samples the pixels back
    cut = Cutouts(8, n=1, min_frac=1.0, flip=0.0, rotate=0.0, jitter=0.0, noise=0.0)
    x = torch.rand(1, 3, 8, 8) * 2 - 1
    params = cut.draw((8, 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(cut.apply(x, params), x, rtol=0, atol=1e-5)
    flip = Cutouts(8, n=1, min_frac=1.0, flip=1.0, rotate=0.0, jitter=0.0, noise=0.0)
    params = flip.draw((8, 8), torch.Generator().manual_seed(0))
    torch.testing.assert_close(flip.apply(x, params), x.flip(-1), rtol=0, atol=1e-5)


def test_missing_clip_names_what_to_fetch(tmp_path):
    with pytest.raises(ClipError, match="hf download openai/clip-vit-base-patch32"):
        load_clip(tmp_path / "no-such-clip")


def write_png(path: Path, hw: tuple[int, int], seed: int) -> Path:
    g = torch.Generator().manual_seed(seed)
    arr = torch.randint(0, 256, (*hw, 3), generator=g, dtype=torch.uint8).numpy()
    Image.fromarray(arr).save(path)
    return path


def test_clip_cli_guides_tiny_vqgan(clip_dir, vq_run, tmp_path, capsys):
    out = tmp_path / "out"
    init = write_png(tmp_path / "init.png", (40, 50), 0)  # center-cropped to the size
    style = write_png(tmp_path / "style.png", (20, 20), 1)
    argv = [
        "clip",
        "a red bird|blur:-0.5",
        "--model",
        str(vq_run),
        "--clip",
        str(clip_dir),
        "--steps",
        "20",
        "--size",
        "32,24",
        "--seed",
        "3",
        "--lr",
        "0.3",
        "--cutouts",
        "8",
        "--save-every",
        "5",
        "--out",
        str(out),
        "--gif",
        "--device",
        "cpu",
        "--no-progress",
        "--json",
        "--init",
        str(init),
        "--image-prompt",
        f"{style}:0.5",
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(printed[-1])
    assert summary["clip_loss_last"] < summary["clip_loss_first"], summary
    assert summary["prompts"] == [["a red bird", 1.0], ["blur", -0.5], [str(style), 0.5]]
    frames = sorted(p.name for p in (out / "frames").glob("*.png"))
    assert frames == [f"{s:06d}.png" for s in (0, 5, 10, 15, 20)]
    with Image.open(out / "final.png") as im:
        assert im.size == (24, 32)  # W, H as requested
    with Image.open(out / "frames.gif") as gif:
        assert gif.n_frames == 5
    # the same run writes the same final image; an existing run is not overwritten
    assert main(argv) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_clip_cli_missing_clip_is_one_line(vq_run, tmp_path, capsys):
    argv = ["clip", "a bird", "--model", str(vq_run), "--clip", str(tmp_path / "none")]
    assert main([*argv, "--out", str(tmp_path / "o"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "CLIP model not found" in err[0]


@pytest.mark.parametrize("kind", ["gumbel", "fsq"])
def test_other_first_stages_are_guided(clip_dir, kind):
    from taming.autoencoder import GumbelVQ
    from taming.clip import GuideSettings, guide_latents

    params = tiny_vq_params()
    torch.manual_seed(2)
    if kind == "gumbel":  # the latents are code logits
        model = GumbelVQ(**params)
    else:  # a modern quantizer through quantizer_config (straight-through rounding)
        del params["n_embed"], params["embed_dim"]
        fsq = {"target": "taming.quantize.FSQ", "params": {"levels": [5, 5, 5]}}
        model = VQModel(**params, quantizer_config=fsq)
    perceptor = load_clip(clip_dir)
    targets = perceptor.encode_text(["a red bird"])
    settings = GuideSettings(steps=3, size=(16, 16), lr=0.3, cutouts=4, eval_cutouts=4)
    steps = list(guide_latents(model, perceptor, targets, torch.ones(1), settings))
    assert [s.step for s in steps] == [0, 1, 2, 3]
    first, last = steps[0], steps[-1]
    assert first.image.shape == last.image.shape == (1, 3, 16, 16)
    assert math.isfinite(first.eval_loss) and math.isfinite(last.eval_loss)
    assert not torch.equal(first.image, last.image)  # the gradient reached the latents
