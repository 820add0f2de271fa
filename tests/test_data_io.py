"""Robust image loading: any mode to RGB, EXIF rotation, bad files skipped (the epoch goes on)."""

from __future__ import annotations

import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader

from taming.data.base import ConcatDatasetWithIndex, ImagePaths
from taming.data.folder import ImageFolderDataset
from taming.data.io import BadImageError, NoReadableExampleError, load_image
from taming.data.utils import custom_collate

SIZE = 16
RED, BLUE = (255, 0, 0), (0, 0, 255)


def _write_png_rgb16(path: Path, rgb16: np.ndarray) -> None:
    """Minimal PNG writer for 16-bit RGB (PIL cannot write it)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[y].astype(">u2").tobytes() for y in range(h))

    def chunk(tag: bytes, data: bytes) -> bytes:
        body = tag + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0)  # 16-bit, colour type 2 (RGB)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(raw))
        + chunk(b"IEND", b"")
    )


def _noise(h: int, w: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def _exif_rotated(path: Path) -> None:
    """40x20 stored image, left half red, right half blue, EXIF orientation 6 (rotate 90 CW)."""
    arr = np.zeros((20, 40, 3), np.uint8)
    arr[:, :20] = RED
    arr[:, 20:] = BLUE
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(arr).save(path, quality=95, exif=exif)


@pytest.fixture
def messy_folder(tmp_path: Path) -> Path:
    root = tmp_path / "images"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / "corrupt.jpg").write_bytes(b"this is not a JPEG at all" * 10)
    good = tmp_path / "good.jpg"
    Image.fromarray(_noise(64, 64)).save(good, quality=90)
    data = good.read_bytes()
    (root / "truncated.jpg").write_bytes(data[: len(data) * 6 // 10])
    Image.new("CMYK", (40, 30), (0, 255, 0, 0)).save(root / "cmyk.jpg")
    Image.fromarray(np.full((24, 32), 32768, np.uint16)).save(root / "gray16.png")
    _write_png_rgb16(root / "sub" / "rgb16.png", np.full((20, 20, 3), 65535, np.uint16))
    rgba = np.zeros((30, 30, 4), np.uint8)
    rgba[..., 3] = 0  # fully transparent (black underneath)
    Image.fromarray(rgba, "RGBA").save(root / "sub" / "rgba.png")
    Image.fromarray(np.full((25, 35), 77, np.uint8), "L").save(root / "sub" / "deeper" / "gray.png")
    _exif_rotated(root / "exif.jpg")
    Image.fromarray(_noise(10, 10, 1)).save(root / "tiny.png")
    Image.new("LA", (20, 20), (10, 255)).save(root / "la.png")
    pal = Image.new("P", (20, 20), 0)
    pal.putpalette([0, 0, 0, 200, 10, 10] + [0] * 762)
    pal.save(root / "palette.gif", transparency=0)
    (root / "notes.txt").write_text("not an image")
    Image.fromarray(_noise(20, 20)).save(root / ".hidden.png")
    return root


N_GOOD, N_BAD = 9, 2


def _check_batch(images: torch.Tensor) -> None:
    assert images.dtype == torch.float32
    assert images.shape[1:] == (SIZE, SIZE, 3)
    assert images.min() >= -1.0 and images.max() <= 1.0
    assert torch.isfinite(images).all()


# -- load_image -------------------------------------------------------------------------------


def test_modes_convert_to_rgb(messy_folder: Path):
    def px(name: str) -> np.ndarray:
        img = load_image(messy_folder / name)
        assert img.mode == "RGB"
        return np.asarray(img).reshape(-1, 3)

    assert np.allclose(px("gray16.png"), 128, atol=1)  # 32768 / 257, not clipped to 255
    assert (px("sub/rgb16.png") == 255).all()
    assert (px("sub/rgba.png") == 255).all()  # transparent -> white background
    assert (px("sub/deeper/gray.png") == 77).all()
    assert (px("la.png") == 10).all()  # opaque gray
    assert (px("palette.gif") == 255).all()  # transparent palette index -> white
    cmyk = px("cmyk.jpg").mean(0)  # magenta
    assert cmyk[0] > 200 and cmyk[1] < 60 and cmyk[2] > 200


def test_float_and_int32_modes(tmp_path: Path):
    f = np.linspace(0, 1, 64, dtype=np.float32).reshape(8, 8)
    Image.fromarray(f, "F").save(tmp_path / "f.tif")
    arr = np.asarray(load_image(tmp_path / "f.tif"))
    assert arr[0, 0, 0] == 0 and arr[-1, -1, 0] == 255
    wide = (np.arange(64, dtype=np.int32).reshape(8, 8) - 100) * 1000  # negative, large
    Image.fromarray(wide, "I").save(tmp_path / "i.tif")
    arr = np.asarray(load_image(tmp_path / "i.tif"))
    assert arr.min() == 0 and arr.max() == 255  # min-max normalised


def test_exif_orientation_applied(messy_folder: Path):
    img = load_image(messy_folder / "exif.jpg")
    assert img.size == (20, 40)  # rotated from 40x20
    arr = np.asarray(img).astype(int)
    assert arr[2, 10, 0] > 200 and arr[2, 10, 2] < 60  # top: red
    assert arr[-3, 10, 2] > 200 and arr[-3, 10, 0] < 60  # bottom: blue
    raw = load_image(messy_folder / "exif.jpg", exif_transpose=False)
    assert raw.size == (40, 20)


@pytest.mark.parametrize("name", ["corrupt.jpg", "truncated.jpg", "missing.png"])
def test_bad_files_raise_bad_image_error(messy_folder: Path, name: str):
    with pytest.raises(BadImageError, match=name):
        load_image(messy_folder / name)


# -- datasets over bad data ---------------------------------------------------------------


def test_folder_dataset_skips_bad_files(messy_folder: Path, caplog):
    ds = ImageFolderDataset(str(messy_folder), size=SIZE, random_crop=True, random_flip=True)
    assert len(ds) == N_GOOD + N_BAD  # notes.txt and .hidden.png are ignored
    caplog.set_level(logging.WARNING, logger="taming.data.io")
    loader = DataLoader(ds, batch_size=3, shuffle=True, collate_fn=custom_collate)
    for _ in range(2):  # two epochs: warnings and count stay per file
        seen = 0
        for batch in loader:
            _check_batch(batch["image"])
            assert all(
                not p.endswith(("corrupt.jpg", "truncated.jpg")) for p in batch["file_path_"]
            )
            seen += len(batch["image"])
        assert seen == len(ds)
    assert ds.num_skipped == N_BAD
    assert sorted(Path(p).name for p in ds.skipped_files) == ["corrupt.jpg", "truncated.jpg"]
    warnings = [r for r in caplog.records if "skipping unreadable" in r.getMessage()]
    assert len(warnings) == N_BAD


def test_folder_dataset_skips_bad_files_with_workers(messy_folder: Path):
    ds = ImageFolderDataset(str(messy_folder), size=SIZE, random_crop=True)
    loader = DataLoader(ds, batch_size=4, num_workers=2, collate_fn=custom_collate)
    seen = 0
    for batch in loader:
        _check_batch(batch["image"])
        seen += len(batch["image"])
    assert seen == len(ds)
    assert ds.num_skipped == N_BAD  # counted in the workers, visible here


def test_exif_rotation_reaches_the_crop(messy_folder: Path):
    ds = ImagePaths([str(messy_folder / "exif.jpg")], size=SIZE, exif_transpose=True)
    img = ds[0]["image"]  # 20x40 -> 16x32 -> center 16x16: red top, blue bottom
    assert img[0, :, 0].mean() > 0.5 and img[0, :, 2].mean() < -0.5
    assert img[-1, :, 2].mean() > 0.5 and img[-1, :, 0].mean() < -0.5
    raw = ImagePaths([str(messy_folder / "exif.jpg")], size=SIZE)[0]["image"]
    assert not np.allclose(raw, img)  # the original ignored EXIF orientation (the default)


def test_small_image_is_upscaled(messy_folder: Path):
    ds = ImagePaths([str(messy_folder / "tiny.png")], size=SIZE)
    assert ds[0]["image"].shape == (SIZE, SIZE, 3)


def test_all_bad_raises_clear_error(messy_folder: Path):
    ds = ImagePaths([str(messy_folder / "corrupt.jpg"), str(messy_folder / "nope.png")], size=8)
    with pytest.raises(NoReadableExampleError, match="none of its 2 examples"):
        ds[0]
    assert ds.num_skipped == 2
    with pytest.raises(IndexError):
        ds[2]


def test_image_paths_original_semantics(messy_folder: Path):
    paths = [str(messy_folder / "cmyk.jpg"), str(messy_folder / "tiny.png")]
    ds = ImagePaths(paths, labels={"class_label": [3, 5]})
    first = ds[0]
    assert first["image"].shape == (30, 40, 3) and first["image"].dtype == np.float32
    assert first["class_label"] == 3 and first["file_path_"] == paths[0]
    ds = ImagePaths(paths, size=8, random_crop=False)
    center = ds[0]["image"]
    assert center.shape == (8, 8, 3)
    np.testing.assert_array_equal(center, ds[0]["image"])  # center crop is deterministic
    with pytest.raises(ValueError, match="label 'x' has 1 values for 2 paths"):
        ImagePaths(paths, labels={"x": [1]})


def test_concat_dataset_with_index(messy_folder: Path):
    a = ImagePaths([str(messy_folder / "tiny.png")], size=8)
    b = ImagePaths([str(messy_folder / "cmyk.jpg"), str(messy_folder / "la.png")], size=8)
    ds = ConcatDatasetWithIndex([a, b])
    assert len(ds) == 3
    example, source = ds[2]
    assert source == 1 and example["file_path_"].endswith("la.png")
    assert ds[-3][1] == 0
