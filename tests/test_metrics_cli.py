"""`taming eval fid` and `taming eval sample` (random Inception weights in the real layout)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inception_testing import TF_FILE, write_images, write_weights
from taming.cli import main
from taming.metrics.fidelity import calculate_metrics


@pytest.fixture(scope="module")
def weights(tmp_path_factory) -> Path:
    return write_weights(tmp_path_factory.mktemp("w") / TF_FILE, seed=3)


@pytest.fixture(scope="module")
def sets(tmp_path_factory) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("sets")
    return write_images(root / "gen", 5, seed=4), write_images(root / "ref", 6, seed=5)


def _last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def test_eval_fid_json_has_the_asked_metrics(weights, sets, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAMING_HOME", str(tmp_path))  # the feature cache goes here
    gen, ref = sets
    args = ["eval", "fid", str(gen), str(ref), "--inception-weights", str(weights), "--json"]
    assert main([*args, "--no-progress"]) == 0
    plain = _last_json(capsys.readouterr().out)
    assert set(plain) == {"fid", "n1", "n2"} and plain["n1"] == 5
    extra = ["--kid", "--isc", "--kid-subset-size", "4", "--isc-splits", "2", "--seed", "7"]
    assert main([*args, *extra, "--no-progress"]) == 0
    out = capsys.readouterr().out
    m = _last_json(out)
    assert {"fid", "kid_mean", "kid_std", "isc_mean", "isc_std"} <= set(m)
    assert "FID:" in out and "KID:" in out and "IS:" in out
    assert m["fid"] == pytest.approx(plain["fid"], rel=1e-9)  # second run: from the cache
    assert list((tmp_path / "metrics_cache").glob("*.npz"))
    api = calculate_metrics(  # the CLI's cached features: its options were passed through
        gen, ref, kid=True, isc=True, inception_weights=weights, kid_subset_size=4,
        isc_splits=2, seed=7, progress=False,
    )  # fmt: skip
    for key in ("fid", "kid_mean", "isc_mean", "isc_std"):
        assert m[key] == pytest.approx(api[key], rel=1e-5)


def test_eval_fid_errors_are_one_line(weights, sets, tmp_path, capsys):
    gen, ref = sets
    w = ["--inception-weights", str(weights)]
    assert main(["eval", "fid", str(gen), str(tmp_path / "missing"), *w]) == 2
    assert "missing" in capsys.readouterr().err
    assert main(["eval", "fid", str(gen), str(ref), "--kid", *w, "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "subset size 1000" in err and len(err.strip().splitlines()) == 1


def test_missing_weights_fail_fast_before_torch_loads(sets, tmp_path):
    """The CLI names the file, the URL and where to put it, before importing torch."""
    gen, ref = sets
    code = (
        "import sys, time; t = time.perf_counter(); from taming.cli import main; "
        f"rc = main(['eval', 'fid', {str(gen)!r}, {str(ref)!r}]); "
        "print(rc, 'torch' in sys.modules, time.perf_counter() - t)"
    )
    env = {
        **os.environ,
        "TAMING_HOME": str(tmp_path / "home"),
        "TORCH_HOME": str(tmp_path / "torch"),
    }
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t0
    rc, torch_loaded, seconds = proc.stdout.split()
    assert rc == "2" and torch_loaded == "False", proc.stderr
    assert float(seconds) < 1.0, f"took {seconds} s (process wall {wall:.1f} s)"
    err = proc.stderr.strip()
    assert len(err.splitlines()) == 1
    assert TF_FILE in err and "https://" in err and str(tmp_path / "home") in err


def test_eval_sample_samples_then_scores(weights, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("TAMING_HOME", str(tmp_path / "home"))  # the feature cache
    from test_sample_cli import write_run

    run = write_run(tmp_path, "class")
    ref = write_images(tmp_path / "ref", 4, size=(16, 16), seed=6)
    out = tmp_path / "samples"
    args = ["eval", "sample", "--model", str(run), "-n", "2", "--classes", "1,3",
            "--reference", str(ref), "--inception-weights", str(weights), "--isc-splits", "2",
            "-o", str(out), "--json", "--no-progress", "--device", "cpu", "-k", "8"]  # fmt: skip
    assert main(args) == 0
    m = _last_json(capsys.readouterr().out)
    assert m["images"] == 4 and m["fid"] > 0 and "isc_mean" in m
    assert sorted(p.name for p in (out / "images").iterdir()) == [
        "0001_000000.png", "0001_000001.png", "0003_000000.png", "0003_000001.png"
    ]  # fmt: skip
    assert (out / "grid.png").is_file()
    assert json.loads((out / "metrics.json").read_text())["fid"] == pytest.approx(m["fid"])
    # the scores are those of the written PNGs
    api = calculate_metrics(out / "images", ref, isc=True, isc_splits=2, inception_weights=weights,
                            cache=False, progress=False)  # fmt: skip
    assert m["fid"] == pytest.approx(api["fid"], rel=1e-5)

    scorer = tmp_path / "scorer.py"
    scorer.write_text("def score(x, c):\n    return x.mean((1, 2, 3))\n")
    rej = ["eval", "sample", "--model", str(run), "-n", "2", "--classes", "1,3",
           "--inception-weights", str(weights), "--isc-splits", "5", "-o", str(tmp_path / "rej"),
           "--json", "--no-progress", "--device", "cpu", "-k", "8",
           "--rejection", f"{scorer}:score", "--acceptance", "0.5"]  # fmt: skip
    assert main(rej) == 0
    m = _last_json(capsys.readouterr().out)
    assert m["acceptance_rate"] == pytest.approx(0.5)
    assert "fid" not in m and "isc_mean" not in m  # 4 images < 5 splits, no reference
    assert m["rejection"]["1"]["candidates"] == 4
