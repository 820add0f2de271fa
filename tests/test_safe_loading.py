"""Configs and checkpoints as a trust boundary, at every entry point.

A checkpoint whose pickle carries a payload (`__reduce__` -> `os.system("touch MARKER")`) is
refused by `taming.load`, `VQModel(ckpt_path=...)`, `taming sample -r`, `taming convert` and
`taming train -r`, and the marker file never appears. A config whose `target:` is `os.system`
is refused by `taming train -b`, `taming.load(run)` and `taming sample -r run` before anything
runs; `--trust-config` / `trust_config=True` / `TAMING_TRUSTED_TARGETS` opt in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml

import taming
from taming.compat.checkpoint import CheckpointError, UnsafeCheckpointError
from taming.config import ConfigError, get_obj_from_str, instantiate_from_config, trusted_config
from test_cli_train import make_images, tiny_config
from test_sample_cli import write_run

REPO = Path(__file__).resolve().parents[1]


class Payload:
    """Unpickling this runs `touch <marker>`."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def payload_checkpoint(path: Path, state: dict, marker: Path) -> Path:
    torch.save({"state_dict": state, "global_step": 1, "callbacks": Payload(marker)}, path)
    return path


def cli(*args: str, cwd: Path, env: dict | None = None) -> tuple[int, str]:
    """Run `taming ARGS` in a subprocess: (exit code, stderr)."""
    proc = subprocess.run(
        [sys.executable, "-m", "taming.cli", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
    )
    return proc.returncode, proc.stderr


def error_line(stderr: str, command: str) -> str:
    """The one error line (and no traceback) of a failed command."""
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith(f"taming {command}: error")]
    assert len(errors) == 1, stderr[-3000:]
    assert stderr.rstrip().endswith(errors[0])
    return errors[0]


# ---------------------------------------------------------------------------------------------
# config targets


def os_system_config(path: Path, marker: Path) -> Path:
    cfg = {"model": {"target": "os.system", "params": {"command": f"touch {marker}"}}}
    cfg["data"] = {"target": "main.DataModuleFromConfig", "params": {"batch_size": 1}}
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_allow_list_resolves_project_original_and_torch_classes_only(monkeypatch):
    assert get_obj_from_str("taming.models.vqgan.VQModel").__name__ == "VQModel"
    assert get_obj_from_str("torch.nn.Identity") is torch.nn.Identity
    assert get_obj_from_str("torch.optim.AdamW") is torch.optim.AdamW
    assert get_obj_from_str("main.ImageLogger").__name__ == "ImageLogger"
    for target in ("os.system", "subprocess.Popen", "builtins.eval", "taming.loading.load"):
        with pytest.raises(ConfigError, match="not on the allow list"):
            get_obj_from_str(target)
    with pytest.raises(ConfigError, match="not on the allow list"):  # refused before import
        get_obj_from_str("a_module_that_does_not_exist.X")
    with trusted_config():
        assert get_obj_from_str("os.path.join") is os.path.join
    assert instantiate_from_config({"target": "torch.nn.Identity"}).__class__ is torch.nn.Identity
    monkeypatch.setenv("TAMING_TRUSTED_TARGETS", "collections.,json.")
    assert get_obj_from_str("collections.OrderedDict").__name__ == "OrderedDict"
    with pytest.raises(ConfigError):
        get_obj_from_str("os.system")


def test_train_refuses_an_os_system_target(tmp_path):
    marker = tmp_path / "marker"
    cfg = os_system_config(tmp_path / "evil.yaml", marker)
    rc, err = cli("train", "-b", str(cfg), "-l", str(tmp_path / "logs"), cwd=tmp_path)
    assert rc == 2
    line = error_line(err, "train")
    assert "model.target" in line and "'os.system'" in line and "--trust-config" in line
    assert not marker.exists()


def test_load_and_sample_refuse_a_run_whose_config_names_os_system(tmp_path):
    marker = tmp_path / "marker"
    run = write_run(tmp_path, "uncond")
    project = next((run / "configs").glob("*-project.yaml"))
    os_system_config(project, marker)
    with pytest.raises(ConfigError, match="os.system"):
        taming.load(run)
    assert not marker.exists()
    rc, err = cli("sample", "-r", str(run), "-n", "1", "-o", str(tmp_path / "out"), cwd=tmp_path)
    assert rc == 2
    assert "'os.system'" in error_line(err, "sample")
    assert not marker.exists()


def test_trusted_configs_may_name_their_own_modules(tmp_path):
    run = write_run(tmp_path, "uncond")
    project = next((run / "configs").glob("*-project.yaml"))
    cfg = yaml.safe_load(project.read_text())
    gpt = cfg["model"]["params"]["transformer_config"]
    gpt["target"] = "taming_test_private_gpt.GPT"  # "a module of your own"
    project.write_text(yaml.safe_dump(cfg))
    (tmp_path / "taming_test_private_gpt.py").write_text("from taming.transformer.gpt import GPT\n")
    sys.path.insert(0, str(tmp_path))
    try:
        with pytest.raises(ConfigError, match="taming_test_private_gpt.GPT"):
            taming.load(run)
        model = taming.load(run, trust_config=True)
        assert type(model.transformer).__name__ == "GPT"
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("taming_test_private_gpt", None)


# ---------------------------------------------------------------------------------------------
# pickle payloads


@pytest.fixture(scope="module")
def vq_run(tmp_path_factory) -> Path:
    """A first-stage run folder (tiny VQGAN config, random weights) for the payload tests."""
    root = tmp_path_factory.mktemp("vqrun")
    images = make_images(root / "imgs", n=4)
    cfg = tiny_config(root / "tiny.yaml", images, validation=False)
    run = root / "logs" / "2026-01-01T00-00-00_tiny"
    (run / "configs").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "configs" / "2026-01-01T00-00-00-project.yaml").write_text(cfg.read_text())
    return run


def test_python_entry_points_refuse_a_payload(tmp_path, vq_run):
    marker = tmp_path / "marker"
    model = taming.load(vq_run)
    ckpt = payload_checkpoint(tmp_path / "evil.ckpt", model.state_dict(), marker)
    with pytest.raises(UnsafeCheckpointError, match="system"):
        taming.load(vq_run, ckpt)
    from taming.autoencoder.vqmodel import VQModel

    params = yaml.safe_load(next((vq_run / "configs").glob("*.yaml")).read_text())
    params = params["model"]["params"]
    with pytest.raises(UnsafeCheckpointError, match="system"):
        VQModel(**params, ckpt_path=str(ckpt))
    assert not marker.exists()


def test_cli_entry_points_refuse_a_payload(tmp_path, vq_run):
    marker = tmp_path / "marker"
    model = taming.load(vq_run)
    vq_run = Path(shutil.copytree(vq_run, tmp_path / "logs" / vq_run.name))
    state = {f"model.{k}": v for k, v in model.state_dict().items()}
    payload_checkpoint(vq_run / "checkpoints" / "last.ckpt", state, marker)
    evil = payload_checkpoint(tmp_path / "evil.ckpt", model.state_dict(), marker)

    rc, err = cli("convert", str(evil), str(tmp_path / "out.safetensors"), cwd=tmp_path)
    assert rc == 2 and "system" in error_line(err, "convert")
    assert not (tmp_path / "out.safetensors").exists()

    rc, err = cli("train", "-r", str(vq_run), "--max_steps", "1", cwd=tmp_path)
    line = error_line(err, "train")
    assert rc == 2 and "system" in line and "--unsafe" not in line.split("never unpickles")[0]

    sample_run = write_run(tmp_path, "uncond")
    ckpt = sample_run / "checkpoints" / "last.ckpt"
    payload_checkpoint(ckpt, torch.load(ckpt, weights_only=True)["state_dict"], marker)
    out = str(tmp_path / "s")
    rc, err = cli("sample", "-r", str(sample_run), "-n", "1", "-o", out, cwd=tmp_path)
    assert rc == 2 and "system" in error_line(err, "sample")
    assert not marker.exists()


@pytest.mark.parametrize("kind", ["empty", "truncated"])
def test_damaged_checkpoints_are_one_line(tmp_path, vq_run, kind):
    model = taming.load(vq_run)
    good = tmp_path / "good.ckpt"
    torch.save({"state_dict": model.state_dict()}, good)
    bad = tmp_path / f"{kind}.ckpt"
    data = good.read_bytes()
    bad.write_bytes(b"" if kind == "empty" else data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=bad.name):
        taming.load(vq_run, bad)
    rc, err = cli("convert", str(bad), str(tmp_path / "out.safetensors"), cwd=tmp_path)
    assert rc == 2 and bad.name in error_line(err, "convert")


def test_truncated_safetensors_is_one_line(tmp_path, vq_run):
    from safetensors.torch import save_file

    model = taming.load(vq_run)
    path = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(CheckpointError, match="w.safetensors: cannot read"):
        taming.load(vq_run, path)
