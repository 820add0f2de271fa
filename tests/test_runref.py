"""Stages named by their training run (`taming.runref`): architecture and weights from the run.

The run folder is made of the original implementation's VQGAN fixture (its config and
checkpoint, copied into the layout `taming train` writes), so the first stage built from the
run is checked against the original's outputs.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from taming.cond import Net2NetTransformer
from taming.config import ConfigError, load_config, to_container
from taming.runref import expand_run_refs, resolve_stage_config

GPT = {
    "target": "taming.modules.transformer.mingpt.GPT",
    "params": {"vocab_size": None, "block_size": None, "n_layer": 1, "n_head": 2, "n_embd": 16},
}


@pytest.fixture()
def vq_fixture(compat_dir) -> Path:
    path = compat_dir / "vqmodel"
    if not path.is_dir():
        pytest.skip(f"{path} not found")
    return path


@pytest.fixture()
def run(vq_fixture, tmp_path) -> Path:
    """A run folder in `taming train`'s layout holding the original VQGAN fixture."""
    run = tmp_path / "logs" / "2026-01-01T00-00-00_vq"
    (run / "configs").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    shutil.copy(vq_fixture / "config.yaml", run / "configs" / "2026-01-01T00-00-00-project.yaml")
    shutil.copy(vq_fixture / "model.ckpt", run / "checkpoints" / "last.ckpt")
    return run


def uncond(first_stage_config, transformer_config=GPT) -> Net2NetTransformer:
    return Net2NetTransformer(
        transformer_config=transformer_config,
        first_stage_config=first_stage_config,
        cond_stage_config="__is_unconditional__",
    )


def test_first_stage_from_run_folder_is_the_original_model(run, vq_fixture):
    model = uncond({"run": str(run)})
    inputs = torch.load(vq_fixture / "inputs.pt")
    exp = torch.load(vq_fixture / "expected.pt")
    with torch.no_grad():
        quant, _, info = model.first_stage_model.encode(inputs["x"])
    torch.testing.assert_close(quant, exp["quant"], atol=1e-5, rtol=1e-5)
    assert torch.equal(info[2].reshape(-1), exp["indices"].reshape(-1))
    # sizes follow the run: 64 codes; 32 px / f4 = 8x8 codes -> SOS + 64 - 1
    assert model.transformer.vocab_size == 64
    assert model.transformer.block_size == 64


def test_ckpt_path_into_a_run_with_the_same_architecture(run, vq_fixture):
    stage = to_container(load_config(vq_fixture / "config.yaml").model)
    stage["params"]["ckpt_path"] = str(run / "checkpoints" / "last.ckpt")
    stage["params"]["lossconfig"] = {"target": "taming.modules.losses.DummyLoss"}
    gpt = {**GPT, "params": {**GPT["params"], "vocab_size": 64, "block_size": 64}}
    model = uncond(stage, gpt)
    inputs = torch.load(vq_fixture / "inputs.pt")
    exp = torch.load(vq_fixture / "expected.pt")
    with torch.no_grad():
        quant = model.first_stage_model.encode(inputs["x"])[0]
    torch.testing.assert_close(quant, exp["quant"], atol=1e-5, rtol=1e-5)


def test_a_real_mismatch_names_both_configs(run, vq_fixture):
    stage = to_container(load_config(vq_fixture / "config.yaml").model)
    stage["params"]["ddconfig"]["ch_mult"] = [1, 1, 1]  # not the run's architecture
    stage["params"]["ckpt_path"] = str(run / "checkpoints" / "last.ckpt")
    with pytest.raises(ConfigError) as info:
        resolve_stage_config(stage, "model.params.first_stage_config", source="mine.yaml")
    msg = str(info.value)
    assert "model.params.first_stage_config.params.ddconfig.ch_mult" in msg
    assert "mine.yaml" in msg and "2026-01-01T00-00-00-project.yaml" in msg
    assert "\n" not in msg
    small = {**GPT, "params": {**GPT["params"], "vocab_size": 32}}
    with pytest.raises(ConfigError, match=r"vocab_size: 32 .* needs 64"):
        uncond({"run": str(run)}, small)


def test_original_form_is_left_alone(vq_fixture):
    stage = to_container(load_config(vq_fixture / "config.yaml").model)
    stage["params"]["ckpt_path"] = str(vq_fixture / "model.ckpt")  # a release folder, no run
    assert resolve_stage_config(stage, "first_stage_config") == stage
    assert resolve_stage_config("__is_first_stage__", "cond_stage_config") == "__is_first_stage__"


def test_missing_or_unset_run_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match="not a run folder"):
        resolve_stage_config({"run": str(tmp_path)}, "first_stage_config")
    with pytest.raises(ConfigError, match="--first-stage"):
        resolve_stage_config({"run": None}, "first_stage_config")


def test_expand_run_refs_saves_the_original_form(run):
    cfg = load_config(Path(__file__).parents[1] / "configs/transformer/folder_small.yaml")
    cfg.model.params.first_stage_config.run = str(run)
    expand_run_refs(cfg.model)
    stage = cfg.model.params.first_stage_config
    assert "run" not in stage and stage.target == "taming.models.vqgan.VQModel"
    assert stage.params.ckpt_path == str(run / "checkpoints" / "last.ckpt")
    assert stage.params.ddconfig.ch_mult == [1, 2, 2]
    assert stage.params.lossconfig.target == "taming.losses.dummy.DummyLoss"
    assert cfg.model.params.transformer_config.params.vocab_size == 64
    assert cfg.model.params.transformer_config.params.block_size == 64
    again = OmegaConf.create(OmegaConf.to_container(cfg.model))
    expand_run_refs(again)  # idempotent: the expanded config agrees with its run
    assert again == cfg.model


def test_vq_cond_stage_named_by_its_run(run):
    model = Net2NetTransformer(
        transformer_config=GPT,
        first_stage_config={"run": str(run)},
        cond_stage_config={"run": str(run)},
        cond_stage_key="image",
    )
    assert model.transformer.vocab_size == 64
    assert model.transformer.block_size == 64 + 64 - 1  # 8x8 cond codes + 8x8 image codes - 1
    w = model.cond_stage_model.quantize.embedding.weight
    assert torch.equal(w, model.first_stage_model.quantize.embedding.weight)


def test_first_stage_flag_on_an_original_form_config(run):
    """`--first-stage` with a config that states its first stage (the issue's case: only
    ckpt_path pointed at the run): the run's checkpoint is used and the stated architecture is
    checked against the run's, naming both configs."""
    from taming.commands.train_data import overrides_from_flags

    base = [str(Path(__file__).parents[1] / "configs/transformer/skimage_demo_transformer.yaml")]
    ov = overrides_from_flags(base, first_stage=str(run))
    assert f'model.params.first_stage_config.params.ckpt_path="{run}/checkpoints/last.ckpt"' in ov
    assert "data.params.train.params.size=32" in ov  # the run's image size (ddconfig.resolution)
    cfg = load_config(base, ov)
    with pytest.raises(ConfigError) as info:
        expand_run_refs(cfg.model, source=base[0])
    msg = str(info.value)
    assert "skimage_demo_transformer.yaml" in msg and "2026-01-01T00-00-00-project.yaml" in msg
    other = {"run": str(run), "params": {"ckpt_path": "elsewhere/last.ckpt"}}
    with pytest.raises(ConfigError, match="not a checkpoint of the run"):
        resolve_stage_config(other, "first_stage_config")
