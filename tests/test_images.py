"""`taming.images`: files in and out of models (load with crop/resize, save, grids)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from taming import images


def _photo(path, w=60, h=40):
    arr = np.zeros((h, w, 3), dtype=np.uint8)
    arr[:, : w // 3] = (255, 0, 0)  # left third red
    arr[:, w // 3 : 2 * w // 3] = (0, 255, 0)  # middle green
    arr[:, 2 * w // 3 :] = (0, 0, 255)  # right blue
    Image.fromarray(arr).save(path)
    return arr


def test_load_keeps_size_and_range(tmp_path):
    arr = _photo(tmp_path / "a.png")
    x = images.load(tmp_path / "a.png")
    assert x.shape == (1, 3, 40, 60) and x.dtype == torch.float32
    expected = torch.from_numpy(arr).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(x[0], expected)


def test_load_center_crop_keeps_aspect(tmp_path):
    _photo(tmp_path / "a.png")  # 60 wide, 40 high
    x = images.load(tmp_path / "a.png", size=20)  # scaled to 30x20, center 20x20 cut
    assert x.shape == (1, 3, 20, 20)
    # the crop is the middle: green dominates, red and blue only at the edges
    green = (x[0, 1] > 0.5).float().mean()
    assert green > 0.45
    assert (x[0, 0, :, 10] < 0).all()  # the center column is not red


def test_load_without_crop_squashes(tmp_path):
    _photo(tmp_path / "a.png")
    x = images.load(tmp_path / "a.png", size=(20, 20), crop=None)
    assert x.shape == (1, 3, 20, 20)
    assert (x[0, 0, :, 1] > 0.5).all()  # the left edge is still red: the whole width is kept


def test_load_multiple_of_cuts_not_stretches(tmp_path):
    arr = _photo(tmp_path / "a.png", w=37, h=21)
    x = images.load(tmp_path / "a.png", multiple_of=8)
    assert x.shape == (1, 3, 16, 32)
    # no resampling: the pixels are the file's own (offset by the center cut)
    expected = torch.from_numpy(arr[2:18, 2:34]).permute(2, 0, 1).float() / 127.5 - 1
    torch.testing.assert_close(x[0], expected)


def test_save_round_trip_and_grid(tmp_path):
    x = torch.rand(1, 3, 8, 12) * 2 - 1
    path = images.save(x, tmp_path / "sub" / "x.png")
    back = images.load(path)
    assert (back - x).abs().max() <= 1 / 127.5 + 1e-6  # uint8 quantisation only
    grid = images.make_grid(torch.zeros(5, 3, 4, 4), nrow=2, padding=1, pad_value=-1.0)
    assert grid.size == (2 * 5 + 1, 3 * 5 + 1)
    assert np.asarray(grid)[0, 0].tolist() == [0, 0, 0]  # black padding
    assert np.asarray(grid)[1, 1].tolist() == [128, 128, 128]  # zero is mid-grey
    images.save(torch.zeros(4, 1, 4, 4), tmp_path / "g.png", nrow=2)
    assert Image.open(tmp_path / "g.png").mode == "L"


def test_missing_and_bad_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        images.load(tmp_path / "nope.png")
    (tmp_path / "bad.png").write_bytes(b"not an image")
    with pytest.raises(OSError, match="bad.png"):
        images.load(tmp_path / "bad.png")
