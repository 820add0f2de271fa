"""`taming train` hardening: non-finite losses, resume overrides, strict sections, one-line errors.

Each case runs the real command (a subprocess where the exit code and stderr matter, `main()`
in-process where an error has to be injected) and checks the exit code, that the error is one
line naming the thing at fault, and that nothing was lost (a finite `last.ckpt` stays finite
and loadable, byte for byte).
"""

from __future__ import annotations

import errno
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import taming
from taming.cli import main
from taming.config import ConfigError
from test_cli_train import QUIET, column, make_images, only_run, read_metrics, tiny_config
from test_safe_loading import cli, error_line

LOG_EVERY = ["lightning.trainer.log_every_n_steps=1"]


def finite_checkpoint(path: Path) -> dict:
    ckpt = torch.load(path, map_location="cpu", weights_only=True)
    for k, v in ckpt["state_dict"].items():
        assert torch.isfinite(v).all(), k
    for opt in ckpt["optimizer_states"]:
        for state in opt["state"].values():
            for name, v in state.items():
                assert torch.isfinite(torch.as_tensor(v)).all(), name
    return ckpt


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> Path:
    """A finished 2-step run of the tiny VQGAN (GAN on from step 1)."""
    root = tmp_path_factory.mktemp("good")
    cfg = tiny_config(root / "tiny.yaml", make_images(root / "imgs"), disc_start=1)
    logs = root / "logs"
    argv = ["train", "-b", str(cfg), "--max_steps", "2", "-l", str(logs), "--no-test"]
    assert main([*argv, *QUIET]) == 0
    return only_run(logs)


def copy_run(run: Path, tmp_path: Path) -> Path:
    import shutil

    return Path(shutil.copytree(run, tmp_path / "logs" / run.name))


# ---------------------------------------------------------------------------------------------
# non-finite losses


def test_nan_learning_rate_stops_at_the_step_and_writes_nothing_non_finite(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs"), disc_start=1)
    logs = tmp_path / "logs"
    rc, err = cli(
        "train", "-b", str(cfg), "-l", str(logs), "--max_steps", "40", "--save_every", "1",
        "model.base_learning_rate=1e6", *QUIET, *LOG_EVERY, cwd=tmp_path,
    )  # fmt: skip
    assert rc == 3, err[-3000:]
    line = error_line(err, "train")
    assert "non-finite loss at generator step" in line and "=nan" in line or "=inf" in line
    step = int(line.split("generator step ")[1].split(":")[0])
    assert step < 40
    run = only_run(logs)
    last = run / "checkpoints" / "last.ckpt"
    if last.exists():  # written before the losses went non-finite
        assert finite_checkpoint(last)["taming"]["step_count"] < step
    rows = read_metrics(run)
    logged = column(rows, "train/aeloss_step")
    assert all(map(torch.isfinite, torch.tensor(logged)))  # no NaN was ever logged
    steps = [int(float(r["step"])) // 2 for r in rows if r.get("train/aeloss_step")]
    assert max(steps, default=0) <= step  # stopped within one logging interval


def test_non_finite_resume_keeps_the_finite_last_ckpt(tmp_path, good_run):
    run = copy_run(good_run, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    rc, err = cli(
        "train", "-r", str(run), "--max_steps", "4",
        "model.params.lossconfig.params.codebook_weight=.inf", *QUIET, cwd=tmp_path,
    )  # fmt: skip
    assert rc == 3
    assert "train/aeloss=inf" in error_line(err, "train")
    assert last.read_bytes() == before
    assert taming.load(run) is not None and finite_checkpoint(last)


@pytest.mark.slow
def test_skip_nonfinite_skips_counts_and_stops_after_n(tmp_path, good_run, capsys, caplog):
    run = copy_run(good_run, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()
    argv = ["train", "-r", str(run), "--max_steps", "6", "--skip-nonfinite", "2"]
    argv += ["model.params.lossconfig.params.codebook_weight=.inf", *QUIET]
    assert main(argv) == 3
    assert "more than 2 non-finite batches were skipped" in capsys.readouterr().err
    assert sum("batch skipped" in r.getMessage() for r in caplog.records) == 2
    assert last.read_bytes() == before


def test_guard_unit_names_the_terms():
    from taming.train.finite import FiniteGuard, NonFiniteLossError, all_finite

    guard = FiniteGuard(max_skips=1)
    assert guard.check(3, {"a": torch.tensor(1.0), "b": 2.0})
    assert not guard.check(4, {"a": torch.tensor(float("nan")), "b": torch.tensor(1.0)})
    with pytest.raises(NonFiniteLossError, match=r"step 5: b=inf"):
        guard.check(5, {"a": torch.tensor(1.0), "b": torch.tensor([1.0, float("inf")])})
    assert all_finite({"w": torch.ones(2), "n": [torch.zeros(1)], "i": torch.tensor([3])})
    assert not all_finite({"w": {"x": torch.tensor([0.0, float("nan")])}})


# ---------------------------------------------------------------------------------------------
# resume overrides


def test_learning_rate_override_on_resume_takes_effect(tmp_path, good_run, caplog):
    caplog.set_level(logging.INFO)
    run = copy_run(good_run, tmp_path)
    old = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    assert old["optimizer_states"][0]["param_groups"][0]["lr"] == pytest.approx(2e-4)
    argv = ["train", "-r", str(run), "--max_steps", "3", "model.base_learning_rate=3e-4"]
    assert main([*argv, *QUIET]) == 0
    new = torch.load(run / "checkpoints" / "last.ckpt", weights_only=True)
    for opt in new["optimizer_states"]:  # batch size 2: 2 x 3e-4
        assert opt["param_groups"][0]["lr"] == pytest.approx(6e-4)
    assert any("replaces the checkpoint's 2.00e-04" in r.getMessage() for r in caplog.records)


@pytest.mark.slow
def test_resume_from_another_architecture_is_one_line(tmp_path, good_run):
    cfg = next((good_run / "configs").glob("*-project.yaml"))
    ckpt = good_run / "checkpoints" / "last.ckpt"
    rc, err = cli(
        "train", "-b", str(cfg), "-n", "other", "-l", str(tmp_path / "logs"),
        "--resume_from_checkpoint", str(ckpt), "model.params.n_embed=32", *QUIET, cwd=tmp_path,
    )  # fmt: skip
    assert rc == 2
    line = error_line(err, "train")
    assert "last.ckpt does not fit the configured VQModel" in line and "embedding" in line


# ---------------------------------------------------------------------------------------------
# strict sections


@pytest.mark.parametrize(
    ("override", "named"),
    [
        ("modle.params.n_embed=32", "modle: unknown key; did you mean 'model'?"),
        ("lightning.trainr.max_steps=1", "lightning.trainr: unknown key; did you mean 'trainer'?"),
        ("lightning.callbacks.image_logger.parms.x=1", "image_logger.parms: unknown key"),
        ("lightning.modelcheckpoint.param.x=1", "did you mean 'params'?"),
        ("data.params.batchsize=3", "data.params.batchsize: unknown key"),
        ("lightning.trainer.max_step=3", "lightning.trainer.max_step: unknown key"),
    ],
)
def test_typos_in_config_sections_fail_naming_the_key(tmp_path, capsys, override, named):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs", n=2))
    argv = ["train", "-b", str(cfg), "-l", str(tmp_path / "logs"), override, *QUIET]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and named in err[0], err
    assert not (tmp_path / "logs").exists() or not any((tmp_path / "logs").iterdir())


def test_allow_extra_keys_keeps_own_sections(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs", n=2))
    argv = ["train", "-b", str(cfg), "-l", str(tmp_path / "logs"), "--max_steps", "1"]
    argv += ["--allow-extra-keys", "--no-test", "my_notes.owner=me", *QUIET]
    assert main(argv) == 0


def test_traceback_flag_keeps_the_full_trace(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs", n=2))
    with pytest.raises(ConfigError, match="modle"):
        main(["--traceback", "train", "-b", str(cfg), "modle.x=1"])
    with pytest.raises(ConfigError, match="modle"):
        main(["train", "--traceback", "-b", str(cfg), "modle.x=1"])


# ---------------------------------------------------------------------------------------------
# files and disks


def test_folder_of_unreadable_images_is_one_line(tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    for i in range(3):
        (bad / f"img{i}.png").write_bytes(b"not a png" * 10)
    cfg = tiny_config(tmp_path / "tiny.yaml", bad, validation=False)
    rc, err = cli("train", "-b", str(cfg), "-l", str(tmp_path / "logs"), *QUIET, cwd=tmp_path)
    assert rc == 2
    line = error_line(err, "train")
    assert "none of its 3 examples could be read" in line and f"in {bad};" in line


def test_full_disk_names_the_file_and_the_disk(tmp_path, good_run, monkeypatch, capsys):
    run = copy_run(good_run, tmp_path)
    last = run / "checkpoints" / "last.ckpt"
    before = last.read_bytes()

    def full(obj, f, *a, **k):
        f.write(b"x" * 10)
        raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter "
                           "failed writing file data/3: file write failed")  # fmt: skip

    monkeypatch.setattr("taming.train.checkpointing.torch.save", full)
    assert main(["train", "-r", str(run), "--max_steps", "4", "--save_every", "1", *QUIET]) == 2
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("taming train: error: no space left on device writing ")
    assert "last.ckpt" in line and "MiB free" in line
    assert last.read_bytes() == before  # the atomic write left the previous file
    assert not list(last.parent.glob(".*.tmp"))


def _mount_tmpfs(path: Path, options: str) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True)  # fmt: skip
    return proc.returncode == 0


@pytest.mark.slow
def test_read_only_log_dir_is_one_line(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs", n=2))
    logs = tmp_path / "ro"
    mounted = _mount_tmpfs(logs, "ro,size=1m")
    if not mounted:
        if os.geteuid() == 0:
            pytest.skip("running as root without mount: cannot make a read-only folder")
        logs.mkdir()
        logs.chmod(0o555)
    try:
        rc, err = cli("train", "-b", str(cfg), "-l", str(logs), "--max_steps", "1", *QUIET,
                      cwd=tmp_path)  # fmt: skip
    finally:
        if mounted:
            subprocess.run(["umount", str(logs)], check=False)
    assert rc == 2
    line = error_line(err, "train")
    assert "permission denied" in line or "read-only" in line
    assert str(logs) in line


@pytest.mark.slow
def test_real_full_disk_on_a_small_tmpfs(tmp_path):
    cfg = tiny_config(tmp_path / "tiny.yaml", make_images(tmp_path / "imgs", n=2))
    logs = tmp_path / "small"
    if not _mount_tmpfs(logs, "size=256k"):
        pytest.skip("cannot mount a tmpfs here")
    try:
        rc, err = cli("train", "-b", str(cfg), "-l", str(logs), "--max_steps", "2",
                      "--save_every", "1", *QUIET, cwd=tmp_path)  # fmt: skip
    finally:
        subprocess.run(["umount", str(logs)], check=False)
    assert rc == 2, err[-2000:]
    line = error_line(err, "train")
    assert "no space left on device" in line and str(logs) in line


def test_enospc_error_line_unit():
    from taming.cli import _os_error_line

    line = _os_error_line(OSError(errno.ENOSPC, "No space left on device", "/nonexistent/x/y.ckpt"))
    assert line.startswith("no space left on device writing /nonexistent/x/y.ckpt (disk of /")
    assert _os_error_line(OSError(errno.ENOENT, "x")) is None
    assert sys.platform  # keep sys imported for the helpers above
