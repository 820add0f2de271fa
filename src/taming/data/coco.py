"""COCO-Stuff with captions and label maps (original `taming/data/coco.py`).

- `Examples(size=256, random_crop=False, interpolation="bicubic", root="data")`: the 35 shipped
  examples (`<root>/coco_examples.txt`, `coco_images/*.jpg`, `coco_segmentations/*.png`,
  255 = unlabeled), 183 labels with `shift_segmentation` (labels + 1, "unlabeled" -> 0).
- `CocoImagesAndCaptionsTrain(size, onehot_segmentation=False, use_stuffthing=False,
  crop_size=None, force_no_crop=False)` / `CocoImagesAndCaptionsValidation(...,
  given_files=None)` over the original layout (relative to `root`, default the CWD):
  images `data/coco/{train,val}2017/`, captions `data/coco/annotations/captions_*2017.json`,
  label maps `data/cocostuffthings/{train,val}2017/*.png` (stuff+thing, 0..181, 255 =
  unlabeled; `use_stuffthing`) or `data/coco/annotations/stuff_*2017_pixelmaps/*.png` (RGB).
  Items in the order of the captions JSON's `images`; `given_files` keeps only those label-map
  file names. Preprocessing: `SmallestMaxSize(size)` + `RandomCrop` (train) / `CenterCrop`
  (validation) of `crop_size` (default `size`), or `Resize(size, size)` with `force_no_crop`,
  applied to image and label map together. One-hot mode (`onehot_segmentation`, needs
  `use_stuffthing`): labels + 1 in uint8, `segmentation` int64 one-hot (H, W, 183) as the
  original; RGB mode: the pixel map as float32 in [-1, 1].
  The original resized label maps **bilinearly** (mixing labels at boundaries); here they are
  resized with nearest neighbour unless `segmentation_interpolation="bilinear"` asks for the
  original's values.
  Keys: `image`, `caption` (one of the image's captions, drawn with `np.random` on every
  access, as a 1-element list), `segmentation`, `img_path`, `seg_path`, `filename_`.
"""

from __future__ import annotations

import json
import os
from typing import Any

import numpy as np
from torch.utils.data import Dataset
from tqdm import tqdm

from taming.data import albu
from taming.data.io import BadFileTracker, BadImageError, load_image
from taming.data.segmentation import ShippedExamples, check_labels, load_label_map
from taming.data.transforms import to_float_image

__all__ = ["CocoBase", "CocoImagesAndCaptionsTrain", "CocoImagesAndCaptionsValidation", "Examples"]

N_LABELS = 183
CAPTION_FILES = ("captions_train2017.json", "captions_val2017.json")


class Examples(ShippedExamples):
    """The shipped COCO-Stuff examples (arguments: `ShippedExamples`)."""

    name, n_labels, shift_segmentation = "coco", N_LABELS, True


class CocoBase(Dataset):
    """(image, caption, segmentation) triples of COCO 2017 (see the module docstring).

    Args:
        size: shortest side (or the square side with `force_no_crop`).
        dataroot: image folder.
        datajson: captions JSON (`captions_train2017.json` or `captions_val2017.json`).
        onehot_segmentation: one-hot labels (needs `use_stuffthing`) instead of RGB maps.
        use_stuffthing: read the stuff+thing label maps of `cocostuffthings`.
        crop_size: crop side (default `size`).
        force_no_crop: resize to (size, size) instead of resize + crop.
        given_files: keep only these label-map file names (`000000000139.png`).
        root: folder the original's `data/...` paths are relative to (default: the CWD).
        segmentation_interpolation: "nearest" (default) or "bilinear" (the original).
    """

    split = "train"

    def __init__(
        self,
        size: int | None = None,
        dataroot: str = "",
        datajson: str = "",
        onehot_segmentation: bool = False,
        use_stuffthing: bool = False,
        crop_size: int | None = None,
        force_no_crop: bool = False,
        given_files: list[str] | None = None,
        root: str = "",
        segmentation_interpolation: str = "nearest",
    ):
        if onehot_segmentation and not use_stuffthing:
            raise ValueError(
                "onehot_segmentation needs use_stuffthing: true (the one-hot mode reads the "
                "stuff+thing label maps)"
            )
        if os.path.basename(datajson) not in CAPTION_FILES:
            raise ValueError(f"datajson must be one of {CAPTION_FILES}, got {datajson}")
        if segmentation_interpolation not in ("nearest", "bilinear"):
            raise ValueError("segmentation_interpolation must be 'nearest' or 'bilinear'")
        if size is None or size <= 0:
            raise ValueError(f"size must be a positive int, got {size}")
        self.size = size
        self.crop_size = crop_size if crop_size is not None else size
        self.onehot = onehot_segmentation
        self.stuffthing = use_stuffthing
        self.n_labels = N_LABELS if onehot_segmentation else None
        json_path = os.path.join(root, datajson)
        if not os.path.isfile(json_path):
            raise FileNotFoundError(
                f"COCO captions not found: {json_path} (expected the COCO 2017 layout "
                "data/coco/{train,val}2017/ and data/coco/annotations/captions_*2017.json)"
            )
        with open(json_path, encoding="utf-8") as f:
            data = json.load(f)
        val = datajson.endswith("captions_val2017.json")
        split = "val2017" if val else "train2017"
        if use_stuffthing:
            prefix = f"data/cocostuffthings/{split}"
        else:
            prefix = f"data/coco/annotations/stuff_{split}_pixelmaps"
        self.segmentation_prefix = os.path.join(root, prefix)
        if not os.path.isdir(self.segmentation_prefix):
            raise FileNotFoundError(f"COCO-Stuff label maps not found: {self.segmentation_prefix}")
        wanted = set(given_files) if given_files is not None else None
        self.img_id_to_filepath: dict[Any, str] = {}
        self.img_id_to_segmentation_filepath: dict[Any, str] = {}
        self.img_id_to_captions: dict[Any, list[str]] = {}
        self.image_ids: list[Any] = []
        for img in tqdm(data["images"], desc="ImgToPath", disable=len(data["images"]) < 10000):
            iid = img["id"]
            self.img_id_to_filepath[iid] = os.path.join(root, dataroot, img["file_name"])
            self.img_id_to_captions[iid] = []
            png = img["file_name"].replace("jpg", "png")
            self.img_id_to_segmentation_filepath[iid] = os.path.join(self.segmentation_prefix, png)
            if wanted is None or png in wanted:
                self.image_ids.append(iid)
        for cap in data["annotations"]:
            self.img_id_to_captions[cap["image_id"]].append(cap["caption"])
        if not self.image_ids:
            raise ValueError(f"COCO {self.split}: no images selected from {json_path}")
        interp = segmentation_interpolation
        kind = "mask" if interp == "nearest" else "image"
        if force_no_crop:
            steps: list = [albu.Resize(size, size)]
        else:
            crop = albu.CenterCrop if self.split == "validation" else albu.RandomCrop
            steps = [albu.SmallestMaxSize(size), crop(self.crop_size, self.crop_size)]
        self.preprocessor = albu.Compose(steps, additional_targets={"segmentation": kind})
        self.labels = {"image_ids": self.image_ids}
        self._tracker = BadFileTracker(len(self.image_ids), name=type(self).__name__)

    def __len__(self) -> int:
        return len(self.image_ids)

    @property
    def num_skipped(self) -> int:
        return self._tracker.num_skipped

    def preprocess_image(self, image_path: str, segmentation_path: str):
        image = np.asarray(
            load_image(image_path, exif_transpose=False, original_convert=True), dtype=np.uint8
        )
        if self.onehot:
            segmentation = load_label_map(segmentation_path)
            segmentation = (segmentation + 1).astype(np.uint8)  # 255 (unlabeled) -> 0
        else:
            segmentation = np.asarray(
                load_image(segmentation_path, exif_transpose=False, original_convert=True)
            )
        if segmentation.shape[:2] != image.shape[:2]:
            raise BadImageError(
                segmentation_path,
                f"label map is {segmentation.shape[1]}x{segmentation.shape[0]}, image "
                f"{image.shape[1]}x{image.shape[0]}",
            )
        out = self.preprocessor(image=image, segmentation=segmentation)
        image, segmentation = to_float_image(out["image"]), out["segmentation"]
        if self.onehot:
            check_labels(segmentation, N_LABELS, segmentation_path)
            onehot = np.zeros(segmentation.shape + (N_LABELS,), dtype=np.int64)
            np.put_along_axis(onehot, segmentation[..., None].astype(np.intp), 1, axis=-1)
            return image, onehot
        return image, (segmentation / 127.5 - 1.0).astype(np.float32)

    def _load_example(self, i: int) -> dict[str, Any]:
        iid = self.image_ids[i]
        img_path = self.img_id_to_filepath[iid]
        seg_path = self.img_id_to_segmentation_filepath[iid]
        image, segmentation = self.preprocess_image(img_path, seg_path)
        captions = self.img_id_to_captions[iid]
        caption = captions[np.random.randint(0, len(captions))] if captions else ""
        return {
            "image": image,
            "caption": [str(caption)],
            "segmentation": segmentation,
            "img_path": img_path,
            "seg_path": seg_path,
            "filename_": img_path.split(os.sep)[-1],
        }

    def __getitem__(self, i: int) -> dict[str, Any]:
        return self._tracker.fetch(i, self._load_example)


class CocoImagesAndCaptionsTrain(CocoBase):
    """COCO 2017 train: random crops (see `CocoBase`)."""

    split = "train"

    def __init__(
        self,
        size: int,
        onehot_segmentation: bool = False,
        use_stuffthing: bool = False,
        crop_size: int | None = None,
        force_no_crop: bool = False,
        root: str = "",
        segmentation_interpolation: str = "nearest",
    ):
        super().__init__(
            size=size,
            dataroot="data/coco/train2017",
            datajson="data/coco/annotations/captions_train2017.json",
            onehot_segmentation=onehot_segmentation,
            use_stuffthing=use_stuffthing,
            crop_size=crop_size,
            force_no_crop=force_no_crop,
            root=root,
            segmentation_interpolation=segmentation_interpolation,
        )


class CocoImagesAndCaptionsValidation(CocoBase):
    """COCO 2017 val: center crops (see `CocoBase`)."""

    split = "validation"

    def __init__(
        self,
        size: int,
        onehot_segmentation: bool = False,
        use_stuffthing: bool = False,
        crop_size: int | None = None,
        force_no_crop: bool = False,
        given_files: list[str] | None = None,
        root: str = "",
        segmentation_interpolation: str = "nearest",
    ):
        super().__init__(
            size=size,
            dataroot="data/coco/val2017",
            datajson="data/coco/annotations/captions_val2017.json",
            onehot_segmentation=onehot_segmentation,
            use_stuffthing=use_stuffthing,
            crop_size=crop_size,
            force_no_crop=force_no_crop,
            given_files=given_files,
            root=root,
            segmentation_interpolation=segmentation_interpolation,
        )
