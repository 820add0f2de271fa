"""Parity check: our datasets against the ORIGINAL data code, item by item (not a default test).

    python scripts/parity_data.py --setup            # once: builds the reference venv
    python scripts/parity_data.py [--out FILE.md]    # builds tiny trees, compares, prints a table

The reference venv (default `/work/refvenv-data`, `--venv`) holds torch 2.14.1, torchvision
0.29.1, albumentations 0.4.3 (installed without its imgaug dependency; setuptools < 70 to build)
and the same opencv-python-headless as our `data` extra. The original code is the
`taming-transformers-hugf` wheel (the original repository's `taming/` package, re-rooted) from
PyPI, unpacked into `<venv>/orig` with its imports pointed back at `taming.`; it is run there by
`parity_data_ref.py` with stubs for imgaug, `torch._six`, `np.bool`, `yaml.load` without a
Loader and `_get_image_size`, and with every download made to raise. Nothing of it enters the
project.

Both sides read the same trees in the original layouts (`tests/data_trees.py`, built from
../shared/data), with the CWD at the tree and `XDG_CACHE_HOME` below it, and seed `random`,
`numpy.random` and `torch` before every item, so random crops/flips are compared too. Arrays
must agree within 1e-5 (floats) or exactly (integers); labels, tokens and strings exactly.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO / "scripts"))

from parity_data_ref import flatten_example  # noqa: E402

import data_trees  # noqa: E402

OPENCV = "opencv-python-headless==5.0.0.93"
PINS = ["torch==2.14.1", "torchvision==0.29.1", OPENCV, "scipy", "scikit-image", "omegaconf"]
PINS += ["pyyaml", "tqdm", "more-itertools"]
ORIG_WHEEL = "taming-transformers-hugf==0.0.1"

S = "taming.data"
AO = "taming.data.annotated_objects"
OI_ALLOW = "taming.data.open_images_helper.top_300_classes_plus_coco_compatibility"
OI_MAP = "taming.data.open_images_helper.open_images_unify_categories_for_coco"
SCENE = {
    "keys": ["image", "objects_bbox", "file_name", "annotations"],
    "no_tokens": 8192,
    "target_image_size": 128,
    "min_objects_per_image": 2,
    "max_objects_per_image": 30,
    "use_group_parameter": True,
    "encode_crop": True,
}
COCO_SCENE = {**SCENE, "data_path": "data/coco_annotations_100", "min_object_area": 0.00001}
OI_SCENE = {
    **SCENE,
    "data_path": "data/open_images_annotations_100",
    "min_object_area": 0.0001,
    "category_allow_list_target": OI_ALLOW,
    "category_mapping_target": OI_MAP,
    "use_additional_parameters": True,
}
CASES = [
    ("custom_test", f"{S}.custom.CustomTest", {"size": 64, "test_images_list_file": "list.txt"}),
    ("sflckr_examples", f"{S}.sflckr.Examples", {"size": 128}),
    (
        "sflckr_random_area",
        f"{S}.sflckr.Examples",
        {"size": 96, "random_crop": True, "interpolation": "area"},
    ),
    ("ade20k_examples", f"{S}.ade20k.Examples", {"size": 128}),
    ("coco_examples", f"{S}.coco.Examples", {"size": 128, "interpolation": "bilinear"}),
    ("ade20k_validation", f"{S}.ade20k.ADE20kValidation", {"size": 128, "crop_size": 128}),
    ("ade20k_train", f"{S}.ade20k.ADE20kTrain", {"size": 160, "crop_size": 128}),
    (
        "coco_captions_val_bilinear",
        f"{S}.coco.CocoImagesAndCaptionsValidation",
        {"size": 128, "crop_size": 128, "onehot_segmentation": True, "use_stuffthing": True},
        {"segmentation_interpolation": "bilinear"},
    ),
    (
        "coco_captions_train_bilinear",
        f"{S}.coco.CocoImagesAndCaptionsTrain",
        {"size": 148, "crop_size": 128, "onehot_segmentation": True, "use_stuffthing": True},
        {"segmentation_interpolation": "bilinear"},
    ),
    (
        "coco_captions_val_rgb",
        f"{S}.coco.CocoImagesAndCaptionsValidation",
        {"size": 128, "force_no_crop": True},
        {"segmentation_interpolation": "bilinear"},
    ),
    ("imagenet_validation", f"{S}.imagenet.ImageNetValidation", {"config": {"size": 128}}),
    (
        "imagenet_train_subset",
        f"{S}.imagenet.ImageNetTrain",
        {"config": {"size": 128, "sub_indices": "151-268"}},
    ),
    ("imagenet_val_depth", f"{S}.imagenet.ImageNetValidationWithDepth", {"size": 128}),
    ("rin_val_depth", f"{S}.imagenet.RINValidationWithDepth", {"size": 128}),
    ("rin_train_depth", f"{S}.imagenet.RINTrainWithDepth", {"size": 128}),
    ("drin_examples", f"{S}.imagenet.DRINExamples", {}),
    ("imagenet_scale_val", f"{S}.imagenet.ImageNetScaleValidation", {"size": 128, "up_factor": 4}),
    ("imagenet_edges_val", f"{S}.imagenet.ImageNetEdgesValidation", {"size": 128}),
    ("ffhq_validation", f"{S}.faceshq.FFHQValidation", {"size": 64}),
    ("celebahq_validation", f"{S}.faceshq.CelebAHQValidation", {"size": 64}),
    (
        "faceshq_val_coord",
        f"{S}.faceshq.FacesHQValidation",
        {"size": 64, "crop_size": 48, "coord": True},
    ),
    (
        "faceshq_train_coord",
        f"{S}.faceshq.FacesHQTrain",
        {"size": 64, "crop_size": 48, "coord": True},
    ),
    (
        "coco_scene_val_center",
        f"{AO}_coco.AnnotatedObjectsCoco",
        {**COCO_SCENE, "split": "validation", "crop_method": "center", "random_flip": False},
    ),
    (
        "coco_scene_train_random1d",
        f"{AO}_coco.AnnotatedObjectsCoco",
        {**COCO_SCENE, "split": "train", "crop_method": "random-1d", "random_flip": True},
    ),
    (
        "coco_scene_train_none",
        f"{AO}_coco.AnnotatedObjectsCoco",
        {**COCO_SCENE, "split": "train", "crop_method": "none", "random_flip": False},
    ),
    (
        "oi_scene_val_center",
        f"{AO}_open_images.AnnotatedObjectsOpenImages",
        {
            **OI_SCENE,
            "split": "validation",
            "crop_method": "center",
            "random_flip": False,
            "min_objects_per_image": 1,
        },
    ),
    (
        "oi_scene_train_random2d",
        f"{AO}_open_images.AnnotatedObjectsOpenImages",
        {**OI_SCENE, "split": "train", "crop_method": "random-2d", "random_flip": True},
    ),
]
INDICES = [0, 1, 2, 3]


def setup(venv: Path) -> None:
    """Create the reference venv and unpack the original code into `<venv>/orig`."""
    py = venv / "bin" / "python"
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    pip = [str(py), "-m", "pip", "install", "-q"]
    subprocess.run([*pip, *PINS], check=True)
    subprocess.run([*pip, "setuptools<70", "wheel"], check=True)
    subprocess.run([*pip, "--no-deps", "--no-build-isolation", "albumentations==0.4.3"], check=True)
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [str(py), "-m", "pip", "download", "-q", "--no-deps", ORIG_WHEEL, "-d", tmp],
            check=True,
        )
        wheel = next(Path(tmp).glob("*.whl"))
        orig = venv / "orig"
        shutil.rmtree(orig, ignore_errors=True)
        with zipfile.ZipFile(wheel) as z:
            z.extractall(tmp)
        shutil.copytree(Path(tmp) / "taming_transformers_hugf" / "taming", orig / "taming")
    for path in (venv / "orig").rglob("*.py"):
        text = path.read_text()
        path.write_text(text.replace("taming_transformers_hugf.taming", "taming"))
    print(f"reference venv ready: {venv} (original code in {venv / 'orig'})")


def _case_dicts() -> list[dict]:
    out = []
    for case in CASES:
        name, target, params = case[:3]
        out.append({"name": name, "target": target, "params": params, "indices": INDICES})
    # items past the end are left out on both sides
    return out


def _ours(case: tuple, tree: Path) -> tuple[dict, dict]:
    name, target, params = case[:3]
    extra = case[3] if len(case) > 3 else {}
    module, cls = target.rsplit(".", 1)
    ds = getattr(importlib.import_module(module), cls)(**params, **extra)
    arrays, values = {}, {"len": len(ds)}
    import torch

    for i in [i for i in INDICES if i < len(ds)]:
        seed = i
        random.seed(seed)
        np.random.seed(seed)
        torch.manual_seed(seed)
        flatten_example(ds[i], i, arrays, values)
    return arrays, values


def _compare(ref_a: dict, ref_v: dict, our_a: dict, our_v: dict) -> tuple[str, float, list]:
    problems, worst = [], 0.0
    for key, ref in ref_a.items():
        if key not in our_a:
            problems.append(f"{key}: missing")
            continue
        ours = np.asarray(our_a[key])
        if ours.shape != ref.shape:
            problems.append(f"{key}: shape {ours.shape} != {ref.shape}")
            continue
        if ours.dtype != ref.dtype:
            problems.append(f"{key}: dtype {ours.dtype} != {ref.dtype}")
        if ref.dtype.kind == "f":
            d = float(np.abs(ours.astype(np.float64) - ref.astype(np.float64)).max(initial=0))
            worst = max(worst, d)
            if d > 1e-5:
                problems.append(f"{key}: max |diff| {d:.3g}")
        elif not np.array_equal(ours, ref):
            problems.append(f"{key}: {int((ours != ref).sum())} values differ")
    extra = sorted(set(our_a) - set(ref_a))
    if extra:
        problems.append(f"extra arrays {extra[:3]}")
    for key, ref in ref_v.items():
        if key.endswith("/img_path") or key.endswith("/seg_path"):
            pass
        if our_v.get(key) != ref:
            problems.append(f"{key}: {our_v.get(key)!r} != {ref!r}")
    return ("ok" if not problems else "DIFF"), worst, problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", default="/work/refvenv-data", type=Path)
    parser.add_argument("--shared", default=REPO.parent / "shared", type=Path)
    parser.add_argument("--setup", action="store_true", help="(re)build the reference venv")
    parser.add_argument("--out", type=Path, help="also write the table (markdown) here")
    parser.add_argument("--keep", type=Path, help="build the trees here and keep them")
    args = parser.parse_args()
    if args.setup or not (args.venv / "orig" / "taming").is_dir():
        setup(args.venv)
    shared_data = args.shared / "data"
    tmp = tempfile.mkdtemp(prefix="parity_data_")
    tree = args.keep or Path(tmp) / "tree"
    data_trees.build_all(shared_data, tree)
    names = (shared_data / "coco_examples.txt").read_text().split()[:6]
    (tree / "list.txt").write_text("\n".join(f"data/coco_images/{n}" for n in names) + "\n")
    cases_file = Path(tmp) / "cases.json"
    cases_file.write_text(json.dumps(_case_dicts()))
    ref_dir = Path(tmp) / "ref"
    subprocess.run(
        [
            str(args.venv / "bin" / "python"),
            str(REPO / "scripts" / "parity_data_ref.py"),
            str(args.venv / "orig"),
            str(tree),
            str(cases_file),
            str(ref_dir),
        ],
        check=True,
    )
    os.environ["XDG_CACHE_HOME"] = str(tree / "xdg")
    os.chdir(tree)
    from taming.data.cvresize import backend

    rows, failed = [], 0
    for case in CASES:
        name = case[0]
        ref_v = json.loads((ref_dir / f"{name}.json").read_text())
        if "error" in ref_v:
            rows.append((name, "-", "-", f"reference failed: {ref_v['error']}"))
            failed += 1
            continue
        ref_a = dict(np.load(ref_dir / f"{name}.npz"))
        try:
            our_a, our_v = _ours(case, tree)
        except Exception as e:
            rows.append((name, str(ref_v["len"]), "-", f"ours failed: {type(e).__name__}: {e}"))
            failed += 1
            continue
        status, worst, problems = _compare(ref_a, ref_v, our_a, our_v)
        failed += status != "ok"
        note = "; ".join(problems[:3]) if problems else ""
        rows.append(
            (name, str(ref_v["len"]), f"{worst:.1e}", status + (f": {note}" if note else ""))
        )
    header = f"resize backend: {backend()}; items {INDICES} of each case, seeded per item\n\n"
    table = "| case | items | max abs diff | result |\n|---|---|---|---|\n"
    table += "\n".join(f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows)
    print(header + table)
    print(f"\n{len(rows) - failed}/{len(rows)} cases equal")
    if args.out:
        args.out.write_text(header + table + "\n")
    if not args.keep:
        shutil.rmtree(tmp, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
