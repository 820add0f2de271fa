"""Tiny dataset trees in the original layouts, built from the shipped examples (../shared/data).

Used by the data tests and by `scripts/parity_data.py` (which runs the original's classes on the
same trees). Every builder writes under `tree` (the folder that plays the original's CWD, with
`data/...` inside) and returns what it made.
"""

from __future__ import annotations

import csv
import io
import json
import os
import random
import tarfile
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = [
    "OPEN_IMAGES_CLASSES",
    "build_ade20k",
    "build_all",
    "build_coco_stuff",
    "build_examples",
    "build_faces",
    "build_imagenet",
    "build_imagenet_tars",
    "build_open_images",
    "imagenet_tar_files",
]

# real Open Images ids (those of open_images_unify_categories_for_coco, and Suitcase) plus made-up
# ids for other allowed names and for names outside the allow list
OPEN_IMAGES_CLASSES = [
    ("/m/01g317", "Person"),
    ("/m/03bt1vf", "Woman"),
    ("/m/04yx4", "Man"),
    ("/m/01xq0k1", "Cattle"),
    ("/m/0cnyhnx", "Bull"),
    ("/m/01s55n", "Suitcase"),
    ("/m/0x0tree", "Tree"),
    ("/m/0x0car", "Car"),
    ("/m/0x0bldg", "Building"),
    ("/m/0x0none", "Not an allowed class"),
]


ORIGINAL_SYNSET_HUMAN_SIZE = 2_655_750


def _link(src: Path, dst: Path) -> None:
    dst.parent.mkdir(parents=True, exist_ok=True)
    if not dst.exists():
        os.symlink(src.resolve(), dst)


def build_examples(shared_data: Path, tree: Path) -> None:
    """`data/{sflckr,ade20k,coco,drin}_*` and `coco_annotations_100` as links to the examples."""
    for name in sorted(os.listdir(shared_data)):
        _link(shared_data / name, tree / "data" / name)


def _drin_relpaths(shared_data: Path) -> list[str]:
    return (shared_data / "drin_examples.txt").read_text().split()


def build_imagenet(shared_data: Path, tree: Path, split: str = "validation") -> Path:
    """A prepared ImageNet root (`xdg/autoencoders/data/ILSVRC2012_<split>`) from the D-RIN
    JPEGs (25 images in their wnid folders) + the depth tree `data/imagenet_depth/<train|val>`."""
    root = tree / "xdg" / "autoencoders" / "data" / f"ILSVRC2012_{split}"
    relpaths = sorted(_drin_relpaths(shared_data))
    for rel in relpaths:
        _link(shared_data / "drin_images" / rel, root / "data" / rel)
        depth = rel.replace(".JPEG", ".png")
        sub = "train" if split == "train" else "val"
        _link(shared_data / "drin_depth" / depth, tree / "data" / "imagenet_depth" / sub / depth)
    (root / "filelist.txt").write_text("\n".join(relpaths) + "\n")
    import taming.data.imagenet_prepare as prep

    for name in ("index_synset.yaml", "synset_human.txt"):
        with prep._info_file(str(root), name) as src:  # the packaged files, for both sides
            text = src.read()
        if name == "synset_human.txt":  # the original re-downloads a file of another size
            filler = ORIGINAL_SYNSET_HUMAN_SIZE - len(text.encode())
            text += "xpad " + "x" * (filler - 6) + "\n"  # one extra entry of the right length
        (root / name).write_text(text)
    (root / ".ready").touch()
    return root


def imagenet_tar_files(shared_data: Path, n_classes: int = 2) -> dict[str, list[Path]]:
    """{wnid: [JPEG paths]} of the first `n_classes` D-RIN classes."""
    by_class: dict[str, list[Path]] = {}
    for rel in sorted(_drin_relpaths(shared_data)):
        wnid = rel.split("/")[0]
        by_class.setdefault(wnid, []).append(shared_data / "drin_images" / rel)
    return dict(list(by_class.items())[:n_classes])


def build_imagenet_tars(shared_data: Path, root_train: Path, root_val: Path) -> dict:
    """Fake `ILSVRC2012_img_train.tar` (per-class tars inside) and `ILSVRC2012_img_val.tar`
    (flat JPEGs) + `validation_synset.txt`, 2 classes."""
    classes = imagenet_tar_files(shared_data)
    root_train.mkdir(parents=True, exist_ok=True)
    root_val.mkdir(parents=True, exist_ok=True)
    with tarfile.open(root_train / "ILSVRC2012_img_train.tar", "w") as outer:
        for wnid, files in classes.items():
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w") as inner:
                for k, f in enumerate(files):
                    inner.add(f, arcname=f"{wnid}_{k}.JPEG")
            info = tarfile.TarInfo(f"{wnid}.tar")
            info.size = buf.tell()
            buf.seek(0)
            outer.addfile(info, buf)
    lines = []
    with tarfile.open(root_val / "ILSVRC2012_img_val.tar", "w") as tar:
        n = 0
        for wnid, files in classes.items():
            for f in files:
                n += 1
                name = f"ILSVRC2012_val_{n:08d}.JPEG"
                tar.add(f, arcname=name)
                lines.append(f"{name} {wnid}")
    (root_val / "validation_synset.txt").write_text("\n".join(lines) + "\n")
    return classes


def build_faces(shared_data: Path, tree: Path, n: int = 3) -> None:
    """`data/ffhq/NNNNN.png` and `data/celebahq/imgHQNNNNN.npy` (square crops of the COCO
    examples) with the original's list files, n train + n validation each."""
    images = sorted((shared_data / "coco_images").glob("*.jpg"))[: 2 * n]
    ffhq, celeba = tree / "data" / "ffhq", tree / "data" / "celebahq"
    ffhq.mkdir(parents=True, exist_ok=True)
    celeba.mkdir(parents=True, exist_ok=True)
    names = {"ffhq": [], "celebahq": []}
    for k, path in enumerate(images):
        img = Image.open(path).convert("RGB")
        side = min(img.size)
        img = img.crop((0, 0, side, side)).resize((300 + 10 * k, 300 + 10 * k))
        img.save(ffhq / f"{k:05d}.png")
        arr = np.asarray(img).transpose(2, 0, 1)[None]  # (1, 3, H, W)
        np.save(celeba / f"imgHQ{k:05d}.npy", np.ascontiguousarray(arr))
        names["ffhq"].append(f"{k:05d}.png")
        names["celebahq"].append(f"imgHQ{k:05d}.npy")
    for dataset, lst in names.items():
        (tree / "data" / f"{dataset}train.txt").write_text("\n".join(lst[:n]) + "\n")
        (tree / "data" / f"{dataset}validation.txt").write_text("\n".join(lst[n:]) + "\n")


def build_ade20k(shared_data: Path, tree: Path) -> Path:
    """`data/ade20k_root` (ADEChallengeData2016 layout) + `data/ade20k_{train,test}.txt` from the
    30 ADE20K examples (20 training, 10 validation)."""
    root = tree / "data" / "ade20k_root"
    names = (shared_data / "ade20k_examples.txt").read_text().split()
    lists: dict[str, list[str]] = {"training": [], "validation": []}
    scenes = []
    for k, name in enumerate(names):
        folder = "training" if k < 20 else "validation"
        stem = f"ADE_{'train' if k < 20 else 'val'}_{k + 1:08d}"
        _link(shared_data / "ade20k_images" / name, root / "images" / folder / f"{stem}.jpg")
        seg = shared_data / "ade20k_segmentations" / name.replace(".jpg", ".png")
        _link(seg, root / "annotations" / folder / f"{stem}.png")
        lists[folder].append(f"{folder}/{stem}.jpg")
        scenes.append(f"{stem} {['bedroom', 'street', 'kitchen'][k % 3]}")
    (root / "sceneCategories.txt").write_text("\n".join(scenes) + "\n")
    (tree / "data" / "ade20k_train.txt").write_text("\n".join(lists["training"]) + "\n")
    (tree / "data" / "ade20k_test.txt").write_text("\n".join(lists["validation"]) + "\n")
    return root


def build_coco_stuff(shared_data: Path, tree: Path) -> None:
    """`data/coco/{train,val}2017`, captions JSONs and `data/cocostuffthings/{train,val}2017`
    from the 35 COCO-Stuff examples (25 train, 10 val), 2 made-up captions each."""
    names = (shared_data / "coco_examples.txt").read_text().split()
    for split, part in (("train2017", names[:25]), ("val2017", names[25:])):
        images, captions = [], []
        for k, name in enumerate(part):
            iid = 1000 + k
            _link(shared_data / "coco_images" / name, tree / "data" / "coco" / split / name)
            seg = name.replace(".jpg", ".png")
            _link(
                shared_data / "coco_segmentations" / seg,
                tree / "data" / "cocostuffthings" / split / seg,
            )
            labels = np.asarray(Image.open(shared_data / "coco_segmentations" / seg)).astype(int)
            rgb = np.stack([labels, (labels * 7) % 256, (labels * 13) % 256], axis=-1)
            pixelmaps = tree / "data" / "coco" / "annotations" / f"stuff_{split}_pixelmaps"
            pixelmaps.mkdir(parents=True, exist_ok=True)
            Image.fromarray(rgb.astype(np.uint8)).save(pixelmaps / seg)
            w, h = Image.open(shared_data / "coco_images" / name).size
            images.append({"id": iid, "file_name": name, "width": w, "height": h})
            for c in range(2):
                captions.append({"id": 10 * iid + c, "image_id": iid, "caption": f"c{c} {name}"})
        out = tree / "data" / "coco" / "annotations" / f"captions_{split}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps({"images": images, "annotations": captions}))


def build_open_images(shared_data: Path, tree: Path, n_images: int = 12, seed: int = 0) -> Path:
    """`data/open_images_annotations_100` in the Open Images CSV layout: images from the COCO
    scene examples renamed to 16-hex ids, random boxes of `OPEN_IMAGES_CLASSES`."""
    root = tree / "data" / "open_images_annotations_100"
    rng = random.Random(seed)
    (root / "train").mkdir(parents=True, exist_ok=True)
    (root / "validation").mkdir(parents=True, exist_ok=True)
    with open(root / "class-descriptions-boxable.csv", "w", newline="") as f:
        csv.writer(f).writerows(OPEN_IMAGES_CLASSES)
    sources = sorted((shared_data / "coco_annotations_100" / "train2017").glob("*.jpg"))
    header = ["ImageID", "Source", "LabelName", "Confidence", "XMin", "XMax", "YMin", "YMax"]
    header += ["IsOccluded", "IsTruncated", "IsGroupOf", "IsDepiction", "IsInside"]
    for split, files in (("train", sources[:n_images]), ("validation", sources[n_images:][:4])):
        rows, ids = [], []
        for k, src in enumerate(files):
            image_id = f"{rng.getrandbits(48):012x}"[-12 + (k % 3) :]  # some shorter than 16
            ids.append(image_id)
            _link(src, root / split / f"{image_id:0>16}.jpg")
            for _ in range(rng.randint(1, 6)):
                x0, y0 = rng.random() * 0.7, rng.random() * 0.7
                x1, y1 = x0 + rng.random() * 0.3, y0 + rng.random() * 0.3
                label = rng.choice(OPEN_IMAGES_CLASSES)[0]
                flags = [str(rng.randint(0, 1)) for _ in range(5)]
                rows.append([image_id, "xclick", label, "1", x0, x1, y0, y1, *flags])
        rows.sort(key=lambda r: rng.random())  # rows of an image are not contiguous
        annotations = {"train": "oidv6-train-annotations-bbox.csv"}.get(
            split, f"{split}-annotations-bbox.csv"
        )
        with open(root / annotations, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(header)
            w.writerows(rows)
        image_list = {"train": "train-images-boxable.csv"}.get(split, f"{split}-images.csv")
        with open(root / image_list, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["image_name"])
            w.writerows([[i] for i in ids])
    return root


def build_all(shared_data: Path, tree: Path) -> None:
    """Every tree above (the layout the parity script and the train tests use)."""
    build_examples(shared_data, tree)
    build_imagenet(shared_data, tree, "train")
    build_imagenet(shared_data, tree, "validation")
    build_faces(shared_data, tree)
    build_ade20k(shared_data, tree)
    build_coco_stuff(shared_data, tree)
    build_open_images(shared_data, tree)
