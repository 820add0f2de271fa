"""Net2NetTransformer: fixture parity with the original, original configs, cond stages."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

import taming
from taming.autoencoder import VQModel
from taming.compat.checkpoint import CheckpointError
from taming.cond import CoordStage, DummyCondStage, Labelator, Net2NetTransformer, SOSProvider
from taming.config import instantiate_from_config, load_config
from taming.sampling import sample_tokens

TRANSFORMER_CONFIGS = [
    "faceshq_transformer",
    "drin_transformer",
    "coco_scene_images_transformer",
    "open_images_scene_images_transformer",
]


def close(actual, expected, name):
    torch.testing.assert_close(actual.float(), expected, atol=1e-5, rtol=1e-5, msg=name)


@pytest.fixture(scope="module", params=["transformer_uncond", "transformer_class"])
def case(request, compat_dir):
    path = compat_dir / request.param
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    model = taming.load(path)
    inputs = torch.load(path / "inputs.pt")
    expected = torch.load(path / "expected.pt")
    c = inputs.get("c", inputs["x"])
    return request.param, model, inputs, expected, c


def test_fixture_encode_forward_decode(case):
    name, model, inputs, exp, c = case
    assert isinstance(model, Net2NetTransformer) and not model.training
    x = inputs["x"]
    quant_z, z_indices = model.encode_to_z(x)
    quant_c, c_indices = model.encode_to_c(c)
    close(quant_z, exp["quant_z"], "quant_z")
    assert torch.equal(z_indices, exp["z_indices"])
    assert torch.equal(c_indices, exp["c_indices"])
    assert torch.equal(quant_c.long(), exp["quant_c"])
    with torch.no_grad():
        logits, target = model(x, c)
        close(logits, exp["logits"], "logits")
        assert torch.equal(target, exp["target"])
        close(model.transformer(inputs["idx"])[0], exp["gpt_logits"], "gpt_logits")
        close(model.decode_to_img(inputs["z_given"], quant_z.shape), exp["dec_given"], "dec_given")
        close(model.decode_to_img(z_indices, quant_z.shape), exp["dec_z"], "dec_z")
        batch = {"image": x.permute(0, 2, 3, 1)}  # channels-last, as datasets deliver it
        if "c" in inputs:
            batch["class_label"] = inputs["c"]
        close(model.shared_step(batch), exp["loss"], "loss")


@pytest.mark.parametrize("use_cache", [True, False])
def test_fixture_sampling(case, use_cache):
    """Greedy tokens exact; per-step probabilities to 1e-5; seeded draws exact.

    The draws equal the original's when made the same way: `torch.manual_seed(0)`, then one
    `torch.multinomial(probs, 1)` per step on a (B, vocab) float32 CPU tensor.
    """
    _, model, _, exp, _ = case
    z, c = exp["z_indices"], exp["c_indices"]
    greedy = model.sample(z[:, :0], c, 64, sample=False, use_cache=use_cache)
    assert torch.equal(greedy, exp["greedy_tokens"])
    for start, key in ((0, "sample"), (32, "sample_half")):
        probs = []
        torch.manual_seed(0)
        tokens = model.sample(
            z[:, :start],
            c,
            64 - start,
            1.0,
            True,
            16,
            use_cache=use_cache,
        )
        assert torch.equal(tokens, exp[f"{key}_tokens"]), key
        # the distributions themselves, independent of the draws
        torch.manual_seed(0)
        sample_tokens(
            model.transformer,
            c,
            64 - start,
            top_k=16,
            x=z[:, :start],
            use_cache=use_cache,
            callback=lambda k, p, probs=probs: probs.append(p.clone()),
        )
        close(torch.stack(probs), exp[f"{key}_probs"], f"{key}_probs")


def test_original_callback_signature(case):
    _, model, _, exp, _ = case
    seen = []
    model.sample(exp["z_indices"][:, :0], exp["c_indices"], 5, callback=seen.append)
    assert seen == [0, 1, 2, 3, 4]


# -- original transformer configs ------------------------------------------------------------


@pytest.fixture(scope="module")
def original_configs(legacy_configs) -> Path:
    return legacy_configs


@pytest.mark.parametrize("name", TRANSFORMER_CONFIGS)
def test_original_transformer_configs_instantiate(original_configs, name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the configs' relative first-stage ckpt_paths point nowhere
    cfg = load_config(original_configs / f"{name}.yaml")
    with pytest.raises(CheckpointError, match=r"first_stage_config\.params\.ckpt_path") as err:
        with torch.device("meta"):
            instantiate_from_config(cfg.model, where="model")
    assert "stage_ckpts=False" in str(err.value)
    # the flag (taming.load(..., stage_ckpts=False)) skips the stage checkpoints; the meta
    # device builds the (up to 1B-parameter) models without allocating memory
    with torch.device("meta"):
        model = taming.load(original_configs / f"{name}.yaml", stage_ckpts=False, device="meta")
    params = cfg.model.params.transformer_config.params
    assert model.transformer.tok_emb.weight.shape == (params.vocab_size, params.n_embd)
    assert len(model.transformer.blocks) == params.n_layer
    cond = {
        "faceshq_transformer": CoordStage,
        "drin_transformer": VQModel,
        "coco_scene_images_transformer": DummyCondStage,
        "open_images_scene_images_transformer": DummyCondStage,
    }[name]
    assert isinstance(model.cond_stage_model, cond)


# -- cond stages and VQ cond-stage batching --------------------------------------------------

TINY_VQ = {
    "target": "taming.models.vqgan.VQModel",
    "params": {
        "embed_dim": 8,
        "n_embed": 32,
        "ddconfig": dict(
            double_z=False,
            z_channels=8,
            resolution=16,
            in_channels=3,
            out_ch=3,
            ch=32,
            ch_mult=[1, 2],
            num_res_blocks=1,
            attn_resolutions=[],
            dropout=0.0,
        ),
        "lossconfig": {"target": "taming.modules.losses.DummyLoss"},
    },
}
TINY_GPT = {
    "target": "taming.modules.transformer.mingpt.GPT",
    "params": {"vocab_size": 32, "block_size": 128, "n_layer": 1, "n_head": 2, "n_embd": 16},
}


def _depth_cond_stage():
    params = {**TINY_VQ["params"]}
    params["ddconfig"] = dict(params["ddconfig"], in_channels=1, out_ch=1)
    return {"target": "taming.models.vqgan.VQModel", "params": params}


def test_vq_cond_stage_indices_are_batched():
    """The original left VQ cond-stage indices flat (B*h*w,) and failed to concatenate."""
    model = Net2NetTransformer(TINY_GPT, TINY_VQ, _depth_cond_stage(), cond_stage_key="depth")
    x, depth = torch.rand(3, 3, 16, 16) * 2 - 1, torch.rand(3, 1, 16, 16) * 2 - 1
    _, c = model.encode_to_c(depth)
    assert c.shape == (3, 64)
    logits, target = model(x, depth)
    assert logits.shape == (3, 64, 32) and target.shape == (3, 64)
    out = model.eval().sample(target[:, :0], c, 4, sample=True, top_k=5)
    assert out.shape == (3, 4)


def test_stages_stay_frozen_and_in_eval():
    model = Net2NetTransformer(TINY_GPT, TINY_VQ, _depth_cond_stage())
    model.train()
    assert model.transformer.training
    assert not model.first_stage_model.training and not model.cond_stage_model.training
    assert not any(p.requires_grad for p in model.first_stage_model.parameters())
    trainable = {n.split(".")[0] for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {"transformer"}


def test_first_stage_as_cond_stage_shares_the_module():
    model = Net2NetTransformer(TINY_GPT, TINY_VQ, "__is_first_stage__", cond_stage_key="image")
    assert model.cond_stage_model is model.first_stage_model
    sd = model.state_dict()
    assert (
        "cond_stage_model.quant_conv.weight" in sd and "first_stage_model.quant_conv.weight" in sd
    )
    other = Net2NetTransformer(TINY_GPT, TINY_VQ, "__is_first_stage__", cond_stage_key="image")
    other.load_checkpoint_state(sd)  # strict
    x = torch.rand(2, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(model(x, x)[0], other(x, x)[0])


def test_simple_stages():
    x = torch.zeros(2, 3, 8, 8)
    assert SOSProvider(5).encode(x)[2][2].tolist() == [[5], [5]]
    assert Labelator(10).encode(torch.tensor([3, 7]))[2][2].tolist() == [[3], [7]]
    with pytest.raises(ValueError, match=r"\[0, 10\)"):
        Labelator(10).encode(torch.tensor([10]))
    coord = CoordStage(n_embed=16, down_factor=4)
    c = torch.linspace(0, 1, 64).view(1, 1, 8, 8)
    quant, _, (_, _, ind) = coord.encode(c)
    assert ind.shape == (1, 1, 2, 2) and int(ind.max()) <= 15
    assert coord.decode(quant).shape == (1, 1, 8, 8)
    tokens = torch.randint(0, 10, (2, 92))
    assert torch.equal(DummyCondStage("objects_bbox").encode(tokens)[2][2], tokens)


def test_condition_dropout_for_guidance():
    model = Net2NetTransformer(
        TINY_GPT,
        TINY_VQ,
        {"target": "taming.modules.util.Labelator", "params": {"n_classes": 10}},
        cond_stage_key="class_label",
        cond_drop_prob=0.5,
    )
    assert model.null_token == 10
    c = torch.arange(10).repeat(40)[:, None]
    model.train()
    dropped = (model.drop_condition(c) == 10).float().mean().item()
    assert 0.35 < dropped < 0.65
    model.eval()
    assert torch.equal(model.drop_condition(c), c)
