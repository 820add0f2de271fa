"""ImageNet in the original cache layout: fake tars (2 classes) extracted, resumed, loaded.

The JPEGs come from the D-RIN examples of ../shared/data (skipped without it); everything else
(tars, `validation_synset.txt`, the cache folder) is built under a temporary XDG_CACHE_HOME.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import data_trees
from taming.cli import main
from taming.data import imagenet_prepare
from taming.data.imagenet import ImageNetTrain, ImageNetValidation, str_to_indices
from taming.data.imagenet_prepare import cache_root, load_human_labels, load_index_synsets


@pytest.fixture()
def xdg(tmp_path: Path, monkeypatch) -> Path:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture()
def tars(shared_dir: Path, xdg: Path) -> dict:
    data = shared_dir / "data"
    if not (data / "drin_examples.txt").is_file():
        pytest.skip(f"original sample data not found in {data}")
    classes = data_trees.build_imagenet_tars(
        data, Path(cache_root("train")), Path(cache_root("validation"))
    )
    return classes


def test_cache_root_is_the_original_one(xdg: Path, monkeypatch):
    assert cache_root("train") == str(xdg / "autoencoders/data/ILSVRC2012_train")
    monkeypatch.delenv("XDG_CACHE_HOME")
    expected = os.path.expanduser("~/.cache/autoencoders/data/ILSVRC2012_validation")
    assert cache_root("validation") == expected


def test_packaged_synsets_are_the_1000_sorted_wnids():
    index = load_index_synsets("/nonexistent")
    wnids = [index[i] for i in range(1000)]
    assert wnids == sorted(wnids) and len(set(wnids)) == 1000
    assert wnids[0] == "n01440764"
    human = load_human_labels("/nonexistent")
    assert human["n01440764"].startswith("tench")
    assert set(human) == set(wnids)


def test_half_open_sub_indices():
    assert str_to_indices("30-32, 33-37, 5") == [5, 30, 31, 33, 34, 35, 36]
    with pytest.raises(ValueError, match="comma"):
        str_to_indices("1-3,")


def test_train_tar_is_extracted_then_loaded(tars: dict):
    ds = ImageNetTrain({"size": 64})
    root = Path(cache_root("train"))
    assert (root / ".ready").exists() and not (root / ".extracted").exists()
    listed = (root / "filelist.txt").read_text().split()
    wnids = sorted(tars)
    assert listed == sorted(f"{w}/{w}_{k}.JPEG" for w in wnids for k in range(len(tars[w])))
    assert not list(root.glob("data/*.tar")) and not list(root.rglob("*.part"))
    assert len(ds) == len(listed)
    ex = ds[0]
    assert ex["image"].shape == (64, 64, 3) and ex["image"].dtype == np.float32
    assert -1.0 <= ex["image"].min() and ex["image"].max() <= 1.0
    assert ex["relpath"] == listed[0] and ex["synsets"] == wnids[0]
    assert ex["class_label"].dtype == np.int64
    labels = {int(ds[i]["class_label"]) for i in range(len(ds))}
    assert labels == {0, 1}  # re-indexed over the wnids present
    assert ex["human_label"] == load_human_labels("")[wnids[0]]
    assert ex["file_path_"] == str(root / "data" / listed[0])
    # decoded pixels equal the JPEG in the tar (full size, no crop)
    full = ImageNetTrain({"size": 0})[0]["image"]
    raw = np.asarray(Image.open(tars[wnids[0]][0]).convert("RGB"))
    np.testing.assert_allclose(full, raw / 127.5 - 1.0, atol=1e-6)
    # ready: a second construction reads the file list only
    (root / "ILSVRC2012_img_train.tar").unlink()
    assert len(ImageNetTrain({"size": 64})) == len(ds)


def test_interrupted_extraction_resumes(tars: dict, monkeypatch):
    calls = {"n": 0}
    write = imagenet_prepare._write_member

    def flaky(src, dst):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the user stops the extraction
        write(src, dst)

    monkeypatch.setattr(imagenet_prepare, "_write_member", flaky)
    with pytest.raises(KeyboardInterrupt):
        ImageNetValidation({"size": 32})
    root = Path(cache_root("validation"))
    assert not (root / ".ready").exists() and (root / ".extracted").exists()
    monkeypatch.setattr(imagenet_prepare, "_write_member", write)
    ds = ImageNetValidation({"size": 32})
    n = sum(len(v) for v in tars.values())
    assert len(ds) == n and (root / ".ready").exists()
    folders = sorted(p.name for p in (root / "data").iterdir())
    assert folders == sorted(tars)  # sorted into class folders by validation_synset.txt
    assert not ds.random_crop  # validation: center crops


def test_validation_without_synset_file_says_what_is_missing(tars: dict):
    (Path(cache_root("validation")) / "validation_synset.txt").unlink()
    with pytest.raises(FileNotFoundError, match="validation_synset.txt is missing"):
        ImageNetValidation()


def test_sub_indices_and_users_original_synset_files(tars: dict):
    root = Path(cache_root("train"))
    first, second = sorted(tars)
    index = {i: w for i, w in load_index_synsets("").items()}
    idx = [i for i, w in index.items() if w == second][0]
    ds = ImageNetTrain({"size": 32, "sub_indices": f"{idx}-{idx + 1}"})
    assert {ds[i]["synsets"] for i in range(len(ds))} == {second}
    assert {int(ds[i]["class_label"]) for i in range(len(ds))} == {0}
    # a root prepared by the original keeps its own synset names
    (root / "synset_human.txt").write_text(f"{first} first class\n{second} second class\n")
    ds = ImageNetTrain({"size": 32})
    assert ds[0]["human_label"] == "first class"


def test_taming_data_prepare_imagenet(tars: dict, capsys):
    assert main(["data", "prepare", "imagenet", "--split", "train"]) == 0
    out = capsys.readouterr().out
    assert "ImageNet train:" in out and "ready" in out


def test_missing_imagenet_is_one_line(xdg: Path, capsys):
    assert main(["data", "prepare", "imagenet", "--split", "validation"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "place ILSVRC2012_img_val.tar" in err


def test_depth_variants_on_the_original_layout(shared_dir: Path, tmp_path: Path, monkeypatch):
    data = shared_dir / "data"
    if not (data / "drin_examples.txt").is_file():
        pytest.skip("original sample data not found")
    data_trees.build_imagenet(data, tmp_path, "validation")
    data_trees.build_imagenet(data, tmp_path, "train")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    monkeypatch.chdir(tmp_path)
    from taming.data.imagenet import RINTrainWithDepth, RINValidationWithDepth

    val = RINValidationWithDepth(size=64)
    ex = val[0]
    assert ex["image"].shape == (64, 64, 3) and ex["depth"].shape == (64, 64)
    assert ex["depth"].dtype == np.float32 and -1 <= ex["depth"].min() <= ex["depth"].max() <= 1
    assert {"relpath", "synsets", "class_label", "human_label", "file_path_"} <= set(ex)
    train = RINTrainWithDepth(size=48)
    assert train[1]["depth"].shape == (48, 48)
    assert len(val) == 25  # all D-RIN examples are of the restricted (animal) classes
