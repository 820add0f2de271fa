"""Datasets: dicts of channels-last float32 images in [-1, 1] plus labels (original convention).

Modules keep the original `target:` paths so the original YAML configs resolve unchanged:
`base` (ImagePaths), `custom` (CustomTrain/CustomTest), `sflckr` / `ade20k` / `coco`
(segmentation examples), `imagenet` (DRINExamples), `annotated_objects_coco`
(AnnotatedObjectsCoco), `conditional_builder.*` (layout -> tokens), `utils` (custom_collate),
`helper_types`. Ours: `folder` (ImageFolderDataset for your own images), `demo`
(SkimagePhotos, no download), `io` (robust decoding, skipping bad files), `transforms`.
"""
