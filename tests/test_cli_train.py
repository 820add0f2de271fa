"""`taming train`: run folder, resume, kill/resume, signals, DDP, original configs, errors."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from lightning.pytorch import Callback
from PIL import Image

import taming
from taming.cli import main

REPO = Path(__file__).resolve().parents[1]
LEGACY = REPO / "configs" / "legacy"

QUIET = [
    "lightning.trainer.enable_progress_bar=false",
    "lightning.trainer.enable_model_summary=false",
    "lightning.trainer.log_every_n_steps=1",
    "lightning.trainer.num_sanity_val_steps=0",
    "lightning.trainer.limit_val_batches=1",
    "lightning.trainer.accelerator=cpu",
]


def make_images(folder: Path, n: int = 6, size: tuple[int, int] = (24, 20)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        arr = rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(arr).save(folder / f"img{i}.png")
    return folder


def tiny_config(
    path: Path, images: Path, disc_start: int = 2, batch_size: int = 2, validation: bool = True
) -> Path:
    """A VQGAN small enough for CPU tests (16 px, f2, 16 codes), trained on `images`."""
    data = {
        "batch_size": batch_size,
        "num_workers": 0,
        "train": {
            "target": "taming.data.folder.ImageFolderDataset",
            "params": {"root_or_list": str(images), "size": 16, "random_crop": True},
        },
    }
    if validation:
        data["validation"] = {
            "target": "taming.data.folder.ImageFolderDataset",
            "params": {"root_or_list": str(images), "size": 16},
        }
    cfg = {
        "model": {
            "base_learning_rate": 1.0e-4,
            "target": "taming.models.vqgan.VQModel",
            "params": {
                "embed_dim": 4,
                "n_embed": 16,
                "monitor": "val/rec_loss",
                "ddconfig": {
                    "double_z": False,
                    "z_channels": 4,
                    "resolution": 16,
                    "in_channels": 3,
                    "out_ch": 3,
                    "ch": 32,
                    "ch_mult": [1, 2],
                    "num_res_blocks": 1,
                    "attn_resolutions": [],
                    "dropout": 0.0,
                },
                "lossconfig": {
                    "target": "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator",
                    "params": {
                        "disc_start": disc_start,
                        "disc_num_layers": 2,
                        "disc_ndf": 8,
                        "perceptual_weight": 0.0,
                    },
                },
            },
        },
        "data": {"target": "main.DataModuleFromConfig", "params": data},
    }
    path.write_text(yaml.safe_dump(cfg))
    return path


def read_metrics(run: Path) -> list[dict[str, str]]:
    with open(run / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def column(rows: list[dict[str, str]], key: str) -> list[float]:
    return [float(r[key]) for r in rows if r.get(key) not in (None, "")]


def only_run(logs: Path) -> Path:
    runs = [p for p in logs.iterdir() if p.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def load_ckpt(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=False)


# ---------------------------------------------------------------------------------------------


def test_train_writes_the_run_folder_and_resumes(tmp_path, capsys):
    images = make_images(tmp_path / "imgs")
    cfg = tiny_config(tmp_path / "tiny.yaml", images)
    logs = tmp_path / "logs"
    argv = ["train", "-b", str(cfg), "-t", "--max_steps", "3", "-l", str(logs), *QUIET]
    assert main([*argv, "lightning.callbacks.image_logger.params.batch_frequency=2"]) == 0
    run = only_run(logs)
    assert run.name.endswith("_tiny")
    assert "run folder:" in capsys.readouterr().out
    assert len(list((run / "configs").glob("*-project.yaml"))) == 1
    lightning_cfg = yaml.safe_load(next((run / "configs").glob("*-lightning.yaml")).read_text())
    assert lightning_cfg["lightning"]["trainer"]["max_steps"] == 3
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["taming"]["step_count"] == 3
    assert ckpt["global_step"] == 6  # Lightning counts both optimizers' steps
    assert not any(k.startswith("model.loss.perceptual_loss.net.") for k in ckpt["state_dict"])
    assert list((run / "checkpoints").glob("epoch=*.ckpt"))  # epoch/best-by-monitor checkpoint
    pngs = sorted(p.name for p in (run / "images" / "train").glob("*.png"))
    assert any(n.startswith("inputs_gs-000002") for n in pngs)
    assert any(n.startswith("reconstructions_gs-000002") for n in pngs)
    assert list((run / "images" / "val").glob("reconstructions_*.png"))
    rows = read_metrics(run)
    assert column(rows, "train/aeloss_step") and column(rows, "train/d_weight_step")
    assert column(rows, "train/codebook_usage") and column(rows, "train/perplexity")
    assert column(rows, "val/rec_loss")
    model = taming.load(run)  # our Lightning checkpoint loads without Lightning's help
    assert type(model).__name__ == "VQModel"

    # resume: same folder, step count and optimizer state continue, history kept
    assert main(["train", "-r", str(run), "--max_steps", "5", *QUIET]) == 0
    assert only_run(logs) == run
    ckpt2 = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt2["taming"]["step_count"] == 5 and ckpt2["global_step"] == 10
    assert float(ckpt2["optimizer_states"][0]["state"][0]["step"]) == 5
    assert len(list((run / "configs").glob("*-project.yaml"))) == 2
    steps = column(read_metrics(run), "step")
    assert min(steps) == 0 and max(steps) >= 4


def test_bf16_mixed_precision_trains_with_fp32_master_weights(tmp_path):
    """`--precision bf16-mixed` runs the manual-optimisation GAN step under bf16 autocast;
    the weights and the checkpoint stay float32 (its accuracy: test_precision_bf16_mixed)."""
    images = make_images(tmp_path / "imgs")
    cfg = tiny_config(tmp_path / "tiny.yaml", images)
    logs = tmp_path / "logs"
    argv = ["train", "-b", str(cfg), "--max_steps", "3", "--precision", "bf16-mixed"]
    assert main([*argv, "-l", str(logs), "--no-test", *QUIET]) == 0
    run = only_run(logs)
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["taming"]["step_count"] == 3
    floats = [t for t in ckpt["state_dict"].values() if t.is_floating_point()]
    assert floats and all(t.dtype == torch.float32 for t in floats)
    losses = column(read_metrics(run), "train/aeloss_step")
    assert len(losses) >= 3 and all(np.isfinite(losses))


def test_resume_flags_are_checked(tmp_path, capsys):
    code = main(["train", "-r", str(tmp_path / "nope"), "-n", "x"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot be given together" in err
    (tmp_path / "run").mkdir()
    assert main(["train", "-r", str(tmp_path / "run")]) == 2
    assert "last.ckpt not found" in capsys.readouterr().err


@pytest.mark.parametrize(
    "override, expected",
    [
        ("model.params.n_embedd=12", "model.params.n_embedd: unknown key for"),
        ("model.params.n_embed=abc", "model.params.n_embed: expected int"),
        ("data.params.train.params.sizee=3", "data.params.train.params.sizee: unknown key"),
        ("lightning.trainer.max_stepz=3", "lightning.trainer.max_stepz: unknown key"),
    ],
)
def test_bad_config_is_one_line_naming_the_key(tmp_path, capsys, override, expected):
    images = make_images(tmp_path / "imgs", n=2)
    cfg = tiny_config(tmp_path / "tiny.yaml", images)
    code = main(["train", "-b", str(cfg), "-l", str(tmp_path / "logs"), override])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert expected in err


def test_missing_files_are_named(tmp_path, capsys):
    assert main(["train", "-b", str(tmp_path / "missing.yaml")]) == 2
    assert str(tmp_path / "missing.yaml") in capsys.readouterr().err
    cfg = tiny_config(tmp_path / "tiny.yaml", tmp_path / "no_such_folder")
    assert main(["train", "-b", str(cfg), "-l", str(tmp_path / "logs")]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(tmp_path / "no_such_folder") in err


def test_original_custom_vqgan_config_runs_unchanged(tmp_path):
    images = make_images(tmp_path / "imgs", n=4)
    listing = tmp_path / "train.txt"
    listing.write_text("".join(f"{p}\n" for p in sorted(images.glob("*.png"))))
    overrides = [
        f"data.params.train.params.training_images_list_file={listing}",
        f"data.params.validation.params.test_images_list_file={listing}",
        "data.params.train.params.size=16",
        "data.params.validation.params.size=16",
        "data.params.batch_size=2",
        "data.params.num_workers=0",
        "model.params.ddconfig.ch=32",
        "model.params.ddconfig.ch_mult=[1,2]",
        "model.params.ddconfig.num_res_blocks=1",
        "model.params.ddconfig.attn_resolutions=[]",
        "model.params.ddconfig.z_channels=4",
        "model.params.ddconfig.resolution=16",
        "model.params.embed_dim=4",
        "model.params.n_embed=16",
        "model.params.lossconfig.params.perceptual_weight=0",
        "model.params.lossconfig.params.disc_num_layers=2",
        "model.params.lossconfig.params.disc_ndf=8",
    ]
    logs = tmp_path / "logs"
    argv = ["train", "-b", str(LEGACY / "custom_vqgan.yaml"), "-t", "True", "-l", str(logs)]
    assert main([*argv, "--max_steps", "2", *QUIET, *overrides]) == 0
    run = only_run(logs)
    assert run.name.endswith("_custom_vqgan")
    assert load_ckpt(run / "checkpoints" / "last.ckpt")["taming"]["step_count"] == 2


def test_original_imagenet_config_reports_the_missing_dataset(tmp_path, capsys):
    argv = ["train", "-b", str(LEGACY / "imagenet_vqgan.yaml"), "-l", str(tmp_path / "logs")]
    code = main([*argv, "model.params.lossconfig.params.perceptual_weight=0"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert err.startswith("taming train: error: data.params.train:")


# ---------------------------------------------------------------------------------------------
# signals, kill, multi-process


class _SendSignal(Callback):
    def __init__(self, signum: int, at_batch: int) -> None:
        self.signum, self.at_batch = signum, at_batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step // 2 == self.at_batch:
            os.kill(os.getpid(), self.signum)


@pytest.mark.parametrize("name", ["SIGTERM", "SIGUSR1"])
def test_stop_signal_saves_and_stops_cleanly(tmp_path, name):
    if not hasattr(signal, name):
        pytest.skip(f"{name} does not exist on this platform")
    from taming.train.run import TrainOptions, run_training

    images = make_images(tmp_path / "imgs", n=8)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, validation=False)
    before = signal.getsignal(getattr(signal, name))
    opts = TrainOptions(
        base=[str(cfg)],
        overrides=QUIET,
        logdir=str(tmp_path / "logs"),
        trainer={"max_steps": 50},
        callbacks=[_SendSignal(getattr(signal, name), at_batch=2)],
    )
    result = run_training(opts)
    assert result.stopped_by == name
    assert result.step_count == 3  # the step during which the signal came was finished
    ckpt = load_ckpt(result.checkpoint)
    assert ckpt["taming"]["step_count"] == 3
    assert signal.getsignal(getattr(signal, name)) == before  # handlers restored


def _wait_for_checkpoint(path: Path, proc: subprocess.Popen, min_step: int, timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"training exited early:\n{proc.stdout.read()}")
        if path.is_file():
            step = load_ckpt(path)["taming"]["step_count"]  # atomic writes: always complete
            if step >= min_step:
                return step
        time.sleep(0.2)
    raise AssertionError("no checkpoint in time")


class _RestoredState(Callback):
    """Copies the weights and optimizer states training starts from (after the restore)."""

    def on_train_start(self, trainer, pl_module):
        frozen = getattr(pl_module, "frozen_prefix", None) or "\0"
        self.weights = {
            k: v.detach().clone()
            for k, v in pl_module.state_dict().items()
            if not k.startswith(frozen)
        }
        self.optimizers = [
            {"state": {i: {n: torch.as_tensor(t).clone() for n, t in st.items()}
                       for i, st in opt.state_dict()["state"].items()}}
            for opt in trainer.optimizers
        ]  # fmt: skip


def test_sigkill_mid_run_then_resume_continues(tmp_path):
    images = make_images(tmp_path / "imgs", n=8)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, disc_start=3, validation=False)
    logs = tmp_path / "logs"
    cmd = [sys.executable, "-m", "taming.cli", "train", "-b", str(cfg), "-l", str(logs)]
    cmd += ["--max_steps", "100000", "--save_every", "2", *QUIET]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=tmp_path
    )
    try:
        run = None
        deadline = time.monotonic() + 120
        while run is None and time.monotonic() < deadline:
            found = list(logs.glob("*/checkpoints")) if logs.is_dir() else []
            run = found[0].parent if found else None
            time.sleep(0.2)
        assert run is not None, "no run folder"
        last = run / "checkpoints" / "last.ckpt"
        saved = _wait_for_checkpoint(last, proc, min_step=4, timeout=120)
    finally:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    killed = load_ckpt(last)
    assert killed["taming"]["step_count"] >= saved >= 4  # past disc_start (3)
    step = killed["taming"]["step_count"]

    from taming.train.run import TrainOptions, run_training

    probe = _RestoredState()
    opts = TrainOptions(resume=str(run), overrides=QUIET, trainer={"max_steps": step + 3})
    run_training(TrainOptions(**{**opts.__dict__, "callbacks": [probe]}))
    # what training continued from is exactly last.ckpt: weights and both Adam moments
    assert probe.weights.keys() == killed["state_dict"].keys()
    for k, v in killed["state_dict"].items():
        assert torch.equal(probe.weights[k], v), k
    assert len(probe.optimizers) == len(killed["optimizer_states"]) == 2
    for restored, saved in zip(probe.optimizers, killed["optimizer_states"], strict=True):
        assert restored["state"].keys() == saved["state"].keys()
        for i, state in saved["state"].items():
            assert set(state) == {"step", "exp_avg", "exp_avg_sq"}
            for name, value in state.items():
                assert torch.equal(torch.as_tensor(restored["state"][i][name]), value), name
    resumed = load_ckpt(last)
    assert resumed["taming"]["step_count"] == step + 3
    assert resumed["global_step"] == 2 * (step + 3)
    for opt_state in resumed["optimizer_states"]:  # Adam moments continued, not restarted
        assert float(opt_state["state"][0]["step"]) == step + 3
    rows = [r for r in read_metrics(run) if r.get("train/disc_factor_step")]
    after = [r for r in rows if float(r["step"]) >= step]
    assert after and all(float(r["train/disc_factor_step"]) == 1.0 for r in after)
    losses = column(after, "train/aeloss_step") + column(after, "train/discloss_step")
    assert losses and all(np.isfinite(losses))


def test_ddp_two_cpu_processes_train_and_checkpoint(tmp_path):
    images = make_images(tmp_path / "imgs", n=8)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, validation=True)
    logs = tmp_path / "logs"
    cmd = [sys.executable, "-m", "taming.cli", "train", "-b", str(cfg), "-l", str(logs)]
    cmd += ["--max_steps", "2", "--devices", "2", "--strategy", "ddp", *QUIET]
    env = {**os.environ, "PL_DISABLE_FORK": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=tmp_path, timeout=300, env=env)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "x 2 (devices)" in proc.stderr  # the learning-rate rule counts both processes
    run = only_run(logs)
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["taming"]["step_count"] == 2
    assert taming.load(run) is not None


class _FailAt(Callback):
    def __init__(self, at_batch: int) -> None:
        self.at_batch = at_batch

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if pl_module.step_count == self.at_batch:
            raise RuntimeError("boom")


def test_an_error_during_training_saves_last_ckpt_then_propagates(tmp_path):
    from taming.train.run import TrainOptions, run_training

    images = make_images(tmp_path / "imgs", n=8)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, validation=False)
    logs = tmp_path / "logs"
    opts = TrainOptions(
        base=[str(cfg)],
        overrides=QUIET,
        logdir=str(logs),
        trainer={"max_steps": 50},
        callbacks=[_FailAt(3)],
    )
    with pytest.raises(RuntimeError, match="boom"):
        run_training(opts)
    ckpt = load_ckpt(only_run(logs) / "checkpoints" / "last.ckpt")
    assert ckpt["taming"]["step_count"] == 3  # like the original's melk()

    # an error before anything was trained leaves an existing last.ckpt alone
    run = only_run(logs)
    before = (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns
    opts = TrainOptions(
        resume=str(run), overrides=QUIET, trainer={"max_steps": 50}, callbacks=[_FailAt(3)]
    )
    with pytest.raises(RuntimeError, match="boom"):
        run_training(opts)
    assert (run / "checkpoints" / "last.ckpt").stat().st_mtime_ns == before


def test_missing_signals_are_skipped_and_resume_accepts_a_checkpoint_file(tmp_path):
    from taming.train.checkpointing import LastCheckpoint
    from taming.train.run import TrainOptions, resolve_run

    cb = LastCheckpoint(tmp_path, stop_signals=("SIGNOSUCH", "SIGTERM"))
    cb._install_handlers()  # a signal this platform lacks is ignored, not an error
    cb._restore_handlers()
    run = tmp_path / "logs" / "2024-01-01T00-00-00_x"
    (run / "checkpoints").mkdir(parents=True)
    (run / "configs").mkdir()
    (run / "configs" / "2024-01-01T00-00-00-project.yaml").write_text("model: {}\n")
    (run / "checkpoints" / "epoch=000001.ckpt").write_bytes(b"")
    paths = resolve_run(TrainOptions(resume=str(run / "checkpoints" / "epoch=000001.ckpt")))
    assert paths.logdir == run and paths.ckpt_path.name == "epoch=000001.ckpt"
    assert paths.base == [str(run / "configs" / "2024-01-01T00-00-00-project.yaml")]


def test_debug_runs_are_moved_aside(tmp_path):
    images = make_images(tmp_path / "imgs", n=4)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, validation=False)
    logs = tmp_path / "logs"
    assert main(["train", "-b", str(cfg), "-d", "-l", str(logs), "--max_steps", "1", *QUIET]) == 0
    moved = list((logs / "debug_runs").iterdir())
    assert len(moved) == 1 and (moved[0] / "checkpoints" / "last.ckpt").is_file()


def test_resume_from_an_original_run_folder_is_a_warm_start(tmp_path, caplog):
    """An original (PL 1.x) run: weights and step count are taken, optimizers start afresh."""
    from taming.config import instantiate_from_config, load_config

    images = make_images(tmp_path / "imgs", n=4)
    cfg = tiny_config(tmp_path / "tiny.yaml", images, validation=False)
    run = tmp_path / "logs" / "2020-11-09T13-33-36_custom_vqgan"
    (run / "configs").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "configs" / "2020-11-09T13-33-36-project.yaml").write_text(cfg.read_text())
    model = instantiate_from_config(load_config(cfg).model)
    model.init_loss()
    torch.nn.init.constant_(model.decoder.conv_out.bias, 0.25)
    torch.save(  # original layout: no "model." prefix, no Lightning 2 loop state
        {"state_dict": model.state_dict(), "global_step": 7, "epoch": 3},
        run / "checkpoints" / "last.ckpt",
    )
    assert main(["train", "-r", str(run), "--max_steps", "8", *QUIET]) == 0
    assert "optimizer states start afresh" in caplog.text
    ckpt = load_ckpt(run / "checkpoints" / "last.ckpt")
    assert ckpt["taming"]["step_count"] == 8
    assert float(ckpt["optimizer_states"][0]["state"][0]["step"]) == 1
