"""`taming sample --from-data` on a segmentation model (issue 12 item 6): the conditions are the
label maps of the run config's dataset (the shipped ADE20K examples in ../shared/data), and the
folder holds the samples, their ground-truth inputs, the coloured conditions and a grid whose
rows read condition | ground truth | sample."""

from __future__ import annotations

import json

import numpy as np
import torch
import yaml
from PIL import Image

from taming.cli import main
from taming.cond.net2net import Net2NetTransformer
from tiny_net2net import STEP, model_params, tiny_gpt, tiny_vq

N_ADE = 151  # ADE20K labels (150 classes + "other")
SIZE = 32


def _seg_params() -> dict:
    params = model_params("seg")
    params["cond_stage_config"] = tiny_vq(
        N_ADE, "taming.models.vqgan.VQSegmentationModel", n_labels=N_ADE
    )
    params["transformer_config"] = tiny_gpt(block_size=128)
    return params


def test_from_data_samples_a_segmentation_model_on_ade20k(shared_dir, tmp_path):
    torch.manual_seed(0)
    model = Net2NetTransformer(**_seg_params()).eval()
    cfg = {
        "model": {
            "target": "taming.models.cond_transformer.Net2NetTransformer",
            "params": _seg_params(),
        },
        "data": {
            "target": "main.DataModuleFromConfig",
            "params": {
                "batch_size": 1,
                "validation": {
                    "target": "taming.data.ade20k.Examples",
                    "params": {"size": SIZE, "root": str(shared_dir / "data")},
                },
            },
        },
    }
    run = tmp_path / "2026-01-01T00-00-00_seg"
    (run / "configs").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "configs" / "2026-01-01T00-00-00-project.yaml").write_text(yaml.safe_dump(cfg))
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    torch.save(
        {"state_dict": state, "global_step": STEP, "taming": {"step_count": STEP}},
        run / "checkpoints" / "last.ckpt",
    )

    argv = ["sample", "-r", str(run), "--from-data", "validation", "-n", "2", "--no-progress"]
    assert main([*argv, "--device", "cpu"]) == 0
    (folder,) = list((run / "samples").glob("*/*/from_validation"))
    names = ["000000.png", "000001.png"]
    assert sorted(p.name for p in folder.glob("*.png") if p.name != "grid.png") == names
    for sub in ("inputs", "conditions"):
        assert sorted(p.name for p in (folder / sub).glob("*.png")) == names
    with Image.open(folder / "000000.png") as img:
        assert img.size == (SIZE, SIZE)
    with Image.open(folder / "grid.png") as grid:  # 2 rows of condition | truth | sample
        assert grid.size == (3 * (SIZE + 2) + 2, 2 * (SIZE + 2) + 2)
    # the ground truth is the dataset's image, as the dataset yields it
    from taming.data.ade20k import Examples

    first = Examples(size=SIZE, root=str(shared_dir / "data"))[0]
    with Image.open(folder / "inputs" / "000000.png") as img:
        got = np.asarray(img).astype(np.int16)
    want = ((np.asarray(first["image"]) + 1) * 127.5).round().clip(0, 255)
    assert np.abs(got - want).max() <= 1
    # the condition differs per example: the two coloured label maps are not the same picture
    a, b = (np.asarray(Image.open(folder / "conditions" / n)) for n in names)
    assert a.shape == (SIZE, SIZE, 3) and not np.array_equal(a, b)
    summary = json.loads((folder / "summary.json").read_text())
    assert summary["from_data"] == "validation" and summary["images"] == 2
