"""Second-stage training: minGPT optimizer groups, every cond stage trains, `taming train` runs.

Tiny models (16 px images, an f2 first stage with 32 codes, a one-layer GPT), a few real
optimizer steps through Lightning.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
import yaml
from torch.utils.data import DataLoader, Subset

import taming
from taming.cli import main
from taming.cond import Net2NetTransformer
from taming.data.utils import custom_collate
from taming.train.net2net_module import Net2NetModule, transformer_param_groups
from taming.transformer.gpt import GPT
from tiny_net2net import tiny_vq  # the shared tiny first stage (f2, 32 codes)

# frozen stages are in eval mode on purpose; the in-memory fits have no logger
pytestmark = pytest.mark.filterwarnings(
    r"ignore:Found \d+ module\(s\) in eval mode", r"ignore:You called `self.log\("
)

REPO = Path(__file__).resolve().parents[1]
LEGACY = REPO / "configs" / "legacy"


def tiny_gpt(vocab_size: int = 32, block_size: int = 128) -> dict:
    return {
        "target": "taming.modules.transformer.mingpt.GPT",
        "params": {
            "vocab_size": vocab_size,
            "block_size": block_size,
            "n_layer": 1,
            "n_head": 2,
            "n_embd": 32,
        },
    }


# -- optimizer groups --------------------------------------------------------------------------


def test_weight_decay_exactly_on_linear_weights():
    gpt = GPT(vocab_size=10, block_size=8, n_layer=2, n_head=2, n_embd=8)
    decay, no_decay = transformer_param_groups(gpt, weight_decay=0.01)
    expected_decay = {"head.weight"}
    expected_no_decay = {"pos_emb", "tok_emb.weight", "ln_f.weight", "ln_f.bias"}
    for i in range(2):
        b = f"blocks.{i}."
        for lin in ("attn.key", "attn.query", "attn.value", "attn.proj", "mlp.0", "mlp.2"):
            expected_decay.add(b + lin + ".weight")
            expected_no_decay.add(b + lin + ".bias")
        for ln in ("ln1", "ln2"):
            expected_no_decay |= {b + ln + ".weight", b + ln + ".bias"}
    assert set(decay["names"]) == expected_decay
    assert set(no_decay["names"]) == expected_no_decay
    assert (decay["weight_decay"], no_decay["weight_decay"]) == (0.01, 0.0)
    assert len(decay["params"]) + len(no_decay["params"]) == len(list(gpt.parameters()))

    class Odd(torch.nn.Module):  # a parameter of an unknown layer type is an error
        def __init__(self):
            super().__init__()
            self.lin = torch.nn.Linear(2, 2)
            self.scale = torch.nn.Parameter(torch.ones(2))

    with pytest.raises(ValueError, match="no weight-decay group.*scale"):
        transformer_param_groups(Odd())


def test_codes_are_computed_outside_autocast():
    """bf16-mixed training must see the same codes as full-precision sampling."""
    torch.manual_seed(0)
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), tiny_vq(in_channels=1), cond_stage_key="d")
    x, d = torch.rand(4, 3, 16, 16) * 2 - 1, torch.rand(4, 1, 16, 16) * 2 - 1
    quant, z = model.encode_to_z(x)
    _, c = model.encode_to_c(d)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        quant_mixed, z_mixed = model.encode_to_z(x)
        _, c_mixed = model.encode_to_c(d)
    assert quant_mixed.dtype == torch.float32
    assert torch.equal(z, z_mixed) and torch.equal(c, c_mixed)


def test_optimizer_is_adamw_over_transformer_parameters_only():
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), "__is_unconditional__")
    module = Net2NetModule(model, learning_rate=1e-3)
    opt = module.configure_optimizers()
    assert isinstance(opt, torch.optim.AdamW)
    assert opt.defaults["betas"] == (0.9, 0.95) and opt.defaults["lr"] == 1e-3
    in_opt = {id(p) for g in opt.param_groups for p in g["params"]}
    assert in_opt == {id(p) for p in model.transformer.parameters()}
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]


# -- every cond stage trains -------------------------------------------------------------------


def _images(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.uniform(-1, 1, (n, 16, 16, 3)).astype(np.float32)  # (N, H, W, C) like datasets


class _Data(pl.LightningDataModule):
    """Examples in memory; `datasets` as `DataModuleFromConfig` (for layout plots)."""

    def __init__(self, examples, batch_size: int = 4, validation=None):
        super().__init__()
        self.examples = examples
        self.batch_size = batch_size
        self.datasets = {"train": examples, "validation": validation or examples}

    def train_dataloader(self):
        return DataLoader(
            self.examples, batch_size=self.batch_size, shuffle=True, collate_fn=custom_collate
        )


def _fit(model: Net2NetTransformer, data: _Data, steps: int = 3) -> Net2NetModule:
    module = Net2NetModule(model, learning_rate=3e-3)
    trainer = pl.Trainer(
        max_steps=steps,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=data)
    return module


def _uncond(shared):
    ex = [{"image": x} for x in _images(8)]
    return Net2NetTransformer(tiny_gpt(), tiny_vq(), "__is_unconditional__"), ex


def _class(shared):
    ex = [{"image": x, "class_label": i % 5} for i, x in enumerate(_images(8))]
    stage = {"target": "taming.modules.util.Labelator", "params": {"n_classes": 5}}
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), stage, cond_stage_key="class_label")
    return model, ex


def _coord(shared):
    ys = np.linspace(0, 1, 16, dtype=np.float32)[:, None, None].repeat(16, 1)  # (16, 16, 1)
    ex = [{"image": x, "coord": ys} for x in _images(8)]
    stage = {
        "target": "taming.modules.misc.coord.CoordStage",
        "params": {"n_embed": 32, "down_factor": 2},
    }
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), stage, cond_stage_key="coord")
    return model, ex


def _segmentation(shared):
    data = shared / "data" if shared is not None else None
    if data is not None and (data / "sflckr_examples.txt").is_file():
        from taming.data.sflckr import Examples

        ex = Subset(Examples(size=16, root=str(data)), range(4))
        n_labels = 182
    else:  # synthetic label maps
        n_labels = 6
        rng = np.random.default_rng(1)
        eye = np.eye(n_labels, dtype=np.float32)
        ex = [
            {"image": x, "segmentation": eye[rng.integers(0, n_labels, (16, 16))]}
            for x in _images(4)
        ]
    stage = {
        "target": "taming.models.vqgan.VQSegmentationModel",
        "params": {**tiny_vq(in_channels=n_labels)["params"], "n_labels": n_labels},
    }
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), stage, cond_stage_key="segmentation")
    return model, ex


def _depth(shared):
    data = shared / "data" if shared is not None else None
    if data is not None and (data / "drin_examples.txt").is_file():
        from taming.data.imagenet import DRINExamples

        ex = Subset(DRINExamples(size=16, root=str(data)), range(4))
    else:
        rng = np.random.default_rng(2)
        ex = [
            {"image": x, "depth": rng.uniform(-1, 1, (16, 16)).astype(np.float32)}
            for x in _images(4)
        ]
    model = Net2NetTransformer(
        tiny_gpt(), tiny_vq(), tiny_vq(in_channels=1), cond_stage_key="depth"
    )
    return model, ex


def _first_stage(shared):
    ex = [{"image": x} for x in _images(8)]
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), "__is_first_stage__", cond_stage_key="image")
    return model, ex


class _LayoutBuilders:
    """A synthetic layout dataset: token lists from the real bbox builder."""

    def __init__(self, n: int = 6):
        from taming.data.conditional_builder.objects_bbox import (
            ObjectsBoundingBoxConditionalBuilder,
        )
        from taming.data.helper_types import Annotation

        builder = ObjectsBoundingBoxConditionalBuilder(5, 4, 256, True, True, False, rng=0)
        self.conditional_builders = {"objects_bbox": builder}
        rng = np.random.default_rng(3)
        self.examples = []
        for x in _images(n):
            anns = []
            for k in range(2):
                x0, y0 = rng.uniform(0, 0.5, 2)
                anns.append(
                    Annotation(
                        area=0.1,
                        image_id=0,
                        bbox=(x0, y0, 0.4, 0.4),
                        category_id="1",
                        id=k,
                        source="synthetic",
                        confidence=1.0,
                        category_no=int(rng.integers(0, 5)),
                    )
                )
            self.examples.append({"image": x, "objects_bbox": builder.build(anns)})

    def get_textual_label_for_category_no(self, no: int) -> str:
        return f"class{no}"

    def __len__(self):
        return len(self.examples)

    def __getitem__(self, i):
        return self.examples[i]


def _layout(shared):
    coco = shared / "data" / "coco_annotations_100" if shared is not None else None
    if coco is not None and coco.is_dir():
        from taming.data.annotated_objects_coco import AnnotatedObjectsCoco

        ds = AnnotatedObjectsCoco(
            str(coco),
            "validation",
            keys=["image", "objects_bbox"],
            target_image_size=16,
            no_tokens=1024,
            max_objects_per_image=30,
        )
        ds = Subset(ds, range(4))
        vocab, length = 1024, 92
    else:
        ds = _LayoutBuilders()
        vocab, length = 256, 14
    stage = {
        "target": "taming.models.dummy_cond_stage.DummyCondStage",
        "params": {"conditional_key": "objects_bbox"},
    }
    model = Net2NetTransformer(
        tiny_gpt(vocab, block_size=length + 64),
        tiny_vq(n_embed=vocab),  # layout and image tokens share the vocabulary
        stage,
        cond_stage_key="objects_bbox",
    )
    return model, ds


COND_STAGES = {
    "unconditional": _uncond,
    "class": _class,
    "coord": _coord,
    "segmentation": _segmentation,
    "depth": _depth,
    "first_stage": _first_stage,
    "layout": _layout,
}


@pytest.fixture(scope="module")
def shared_or_none(request):
    try:
        return request.getfixturevalue("shared_dir")
    except pytest.skip.Exception:
        return None


@pytest.mark.parametrize("name", list(COND_STAGES))
def test_every_cond_stage_trains_a_few_steps(name, shared_or_none):
    torch.manual_seed(0)
    model, examples = COND_STAGES[name](shared_or_none)
    before = copy.deepcopy(model.state_dict())
    module = _fit(model, _Data(examples))
    assert module.step_count == 3
    loss = float(module.trainer.callback_metrics["train/loss"])
    assert math.isfinite(loss) and loss > 0
    after = model.state_dict()
    for key, value in before.items():
        same = torch.equal(value, after[key])
        if key.startswith("transformer."):
            continue
        assert same, f"{key} changed (the stages must stay frozen)"
    changed = [
        k for k in before if k.startswith("transformer.") and not torch.equal(before[k], after[k])
    ]
    assert len(changed) == len([k for k in before if k.startswith("transformer.")])
    assert not model.first_stage_model.training and not model.cond_stage_model.training

    # image logging (cheap: N=2) draws the condition where it can
    module.eval()
    batch = custom_collate([examples[i] for i in range(2)])
    images = module.log_images(batch, N=2)
    assert images["samples_nopix"].shape == (2, 3, 16, 16)
    if name == "layout":
        assert images["conditioning"].shape == (2, 3, 16, 16)  # the plotted layout
        assert float(images["conditioning"].max()) == 1.0  # white canvas


def test_layout_plot_is_optional_and_robust():
    model, ds = _layout(None)
    batch = custom_collate([ds[0], ds[1]])
    model.eval()
    assert "conditioning" not in model.log_images(batch, N=2)  # no builder given

    class Broken:
        def plot(self, *args, **kwargs):
            raise RuntimeError("no font")

    assert "conditioning" not in model.log_images(batch, N=2, conditional_builder=Broken())
    logged = model.log_images(
        batch, N=2, conditional_builder=ds.conditional_builders["objects_bbox"]
    )
    assert logged["conditioning"].shape == (2, 3, 16, 16)


# -- taming train ------------------------------------------------------------------------------

QUIET = [
    "lightning.trainer.enable_progress_bar=false",
    "lightning.trainer.enable_model_summary=false",
    "lightning.trainer.log_every_n_steps=1",
    "lightning.trainer.num_sanity_val_steps=0",
    "lightning.trainer.accelerator=cpu",
]


def _write_first_stage(path: Path) -> Path:
    from taming.config import instantiate_from_config

    torch.manual_seed(1)
    vq = instantiate_from_config(tiny_vq())
    # as `taming train` writes a first-stage run: `model.` keys, loss weights included
    state = {f"model.{k}": v for k, v in vq.state_dict().items()}
    state["model.loss.discriminator.main.0.weight"] = torch.zeros(8, 3, 4, 4)
    torch.save({"state_dict": state, "global_step": 22, "taming": {"step_count": 11}}, path)
    return path


def _transformer_config(path: Path, first_stage_ckpt: Path, images: Path) -> Path:
    from PIL import Image

    images.mkdir(parents=True, exist_ok=True)
    for i, x in enumerate(_images(6)):
        Image.fromarray(((x + 1) * 127.5).astype(np.uint8)).save(images / f"{i}.png")
    first = tiny_vq()
    first["params"]["ckpt_path"] = str(first_stage_ckpt)
    cfg = {
        "model": {
            "base_learning_rate": 2.0e-4,
            "target": "taming.models.cond_transformer.Net2NetTransformer",
            "params": {
                "cond_stage_config": "__is_unconditional__",
                "first_stage_key": "image",
                "pkeep": 0.9,
                "transformer_config": tiny_gpt(),
                "first_stage_config": first,
            },
        },
        "data": {
            "target": "main.DataModuleFromConfig",
            "params": {
                "batch_size": 2,
                "num_workers": 0,
                "train": {
                    "target": "taming.data.folder.ImageFolderDataset",
                    "params": {"root_or_list": str(images), "size": 16},
                },
                "validation": {
                    "target": "taming.data.folder.ImageFolderDataset",
                    "params": {"root_or_list": str(images), "size": 16},
                },
            },
        },
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_taming_train_transformer_writes_a_loadable_run_and_resumes(tmp_path, capsys):
    ckpt = _write_first_stage(tmp_path / "vq.ckpt")
    cfg = _transformer_config(tmp_path / "tiny_transformer.yaml", ckpt, tmp_path / "imgs")
    logs = tmp_path / "logs"
    argv = ["train", "-b", str(cfg), "-t", "--max_steps", "3", "-l", str(logs), *QUIET]
    assert (
        main(
            [
                *argv,
                "lightning.callbacks.image_logger.params.batch_frequency=2",
                "lightning.callbacks.image_logger.params.max_images=2",
            ]
        )
        == 0
    )
    out = capsys.readouterr()
    assert "run folder:" in out.out
    (run,) = [p for p in logs.iterdir() if p.is_dir()]
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["taming"]["step_count"] == 3 and last["global_step"] == 3
    assert all(k.startswith("model.") for k in last["state_dict"])
    # the learning-rate rule: accumulate x devices x nodes x batch x base_lr
    assert last["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(2 * 2.0e-4)
    # image grids with transformer samples, N = max_images
    pngs = sorted(p.name for p in (run / "images" / "train").glob("*.png"))
    assert any(n.startswith("samples_half_gs-000002") for n in pngs)
    metrics = (run / "metrics.csv").read_text()
    assert "train/loss_step" in metrics and "val/loss" in metrics

    model = taming.load(run)  # our checkpoint, stages included, without Lightning
    assert isinstance(model, Net2NetTransformer) and not model.training
    trained = {k[len("model.") :]: v for k, v in last["state_dict"].items()}
    for key, value in model.state_dict().items():
        assert torch.equal(value, trained[key]), key
    vq = torch.load(ckpt, weights_only=False)["state_dict"]
    conv_in = vq["model.encoder.conv_in.weight"]
    assert torch.equal(model.first_stage_model.encoder.conv_in.weight, conv_in)

    # resume continues the step count in the same folder
    assert main(["train", "-r", str(run), "--max_steps", "5", *QUIET]) == 0
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["taming"]["step_count"] == 5


def test_first_stage_as_cond_stage_checkpoint_roundtrip(tmp_path):
    """Shared `__is_first_stage__` modules: both prefixes are saved, and load back strictly."""
    model = Net2NetTransformer(tiny_gpt(), tiny_vq(), "__is_first_stage__", cond_stage_key="image")
    module = Net2NetModule(model)
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": module.state_dict(), "global_step": 4}, path)
    (tmp_path / "config.yaml").write_text(
        yaml.safe_dump(
            {
                "model": {
                    "target": "taming.models.cond_transformer.Net2NetTransformer",
                    "params": {
                        "transformer_config": tiny_gpt(),
                        "first_stage_config": tiny_vq(),
                        "cond_stage_config": "__is_first_stage__",
                        "cond_stage_key": "image",
                    },
                }
            }
        )
    )
    loaded = taming.load(tmp_path)
    assert loaded.cond_stage_model is loaded.first_stage_model
    x = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        assert torch.equal(loaded(x, x)[0], model.eval()(x, x)[0])


def test_missing_first_stage_checkpoint_is_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    argv = ["train", "-b", str(LEGACY / "drin_transformer.yaml"), "-t", "-l", "logs"]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "first_stage_config.params.ckpt_path" in err and "not found" in err
    assert "2020-09-23T17-56-33_imagenet_vqgan" in err


# -- our transformer configs -------------------------------------------------------------------

CONFIGS = REPO / "configs" / "transformer"


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.stem)
def test_transformer_configs_build(path, tmp_path):
    from taming.config import load_config

    cfg = load_config(path)
    overrides = []
    if "run" in cfg.model.params.first_stage_config:  # named by its run: a run of the preset
        run = tmp_path / "run"
        (run / "configs").mkdir(parents=True)
        vq = (
            REPO
            / "configs"
            / "vqgan"
            / ("folder_vqgan.yaml" if "folder_t" in path.stem else f"{path.stem}.yaml")
        )
        (run / "configs" / "t-project.yaml").write_text(vq.read_text())
        overrides = [
            f"model.params.first_stage_config.run={run}",
            "model.params.first_stage_config.params.ckpt_path=null",
        ]
    with torch.device("meta"):  # no memory for the large ones
        model = taming.load(path, stage_ckpts=False, device="meta", overrides=overrides)
    assert isinstance(model, Net2NetTransformer)
    gpt, first = model.transformer, model.first_stage_model
    assert gpt.vocab_size == first.n_embed
    f = 2 ** (len(first.ddconfig["ch_mult"]) - 1)
    tokens = (first.ddconfig["resolution"] // f) ** 2
    assert gpt.block_size == tokens  # one prefix token (SOS or class) + codes - 1
    assert cfg.data.params.train.params.size == first.ddconfig["resolution"]


def test_demo_transformer_yaml_is_the_demo_model(tmp_path):
    from taming.config import load_config
    from taming.train.demo import demo_transformer_config, demo_vqgan_config

    run = tmp_path / "demo"
    (run / "configs").mkdir(parents=True)
    vq = demo_vqgan_config()
    vq.pop("lightning")
    (run / "configs" / "t-project.yaml").write_text(yaml.safe_dump(vq))
    ours = demo_transformer_config(run, 64)["model"]["params"]
    yaml_params = load_config(CONFIGS / "skimage_demo_transformer.yaml").model.params
    assert yaml_params.transformer_config.params == ours["transformer_config"]["params"]
    for key in ("embed_dim", "n_embed", "ddconfig"):
        assert (
            yaml_params.first_stage_config.params[key] == ours["first_stage_config"]["params"][key]
        )


def test_class_config_trains_then_samples_with_guidance(tmp_path, capsys):
    """`taming train` on the class-conditional CFG config (shrunk), then `taming sample`."""
    pytest.importorskip("skimage")
    from taming.config import instantiate_from_config
    from taming.train.demo import demo_vqgan_config

    vq_cfg = demo_vqgan_config()["model"]
    torch.manual_seed(0)
    vq = instantiate_from_config(vq_cfg)
    state = {f"model.{k}": v for k, v in vq.state_dict().items()}
    torch.save({"state_dict": state}, tmp_path / "vq.ckpt")
    logs = tmp_path / "logs"
    argv = [
        "train", "-b", str(CONFIGS / "skimage_class_transformer.yaml"), "--max_steps", "2",
        "-l", str(logs), *QUIET,
        f"model.params.first_stage_config.params.ckpt_path={tmp_path / 'vq.ckpt'}",
        "model.params.transformer_config.params.n_layer=1",
        "data.params.batch_size=2",
        "data.params.train.params.length=4",
        "data.params.validation.params.length=2",
        "lightning.callbacks.image_logger.params.disabled=true",
    ]  # fmt: skip
    assert main(argv) == 0
    (run,) = [p for p in logs.iterdir() if p.is_dir()]
    model = taming.load(run)
    assert model.cond_drop_prob == 0.1 and model.null_token == 8
    argv = ["sample", "-r", str(run), "--classes", "3", "-n", "1", "--cfg-scale", "2", "-k", "50"]
    assert main([*argv, "--no-progress", "--device", "cpu"]) == 0
    folder = run / "samples" / "top_k_50_temp_1.00_top_p_1.0_cfg_2" / "2" / "3"
    assert (folder / "000000.png").is_file()
    capsys.readouterr()
