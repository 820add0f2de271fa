"""Datasets: dicts of channels-last float32 images in [-1, 1] plus labels (original convention).

Modules keep the original `target:` paths so the original YAML configs resolve unchanged:
`base` (ImagePaths, NumpyPaths, ConcatDatasetWithIndex), `imagenet` (ImageNetTrain/Validation;
also the names of `imagenet_depth`: *WithDepth, RIN*, DRINExamples, and of `imagenet_sr`:
ImageNetScale*, ImageNetEdges*), `faceshq` (CelebA-HQ, FFHQ, FacesHQ), `ade20k`, `coco`,
`sflckr`, `custom`, `annotated_objects_coco` / `annotated_objects_open_images` (+
`open_images_helper`), `conditional_builder.*` (layout -> tokens), `utils` (custom_collate),
`helper_types`. Ours: `albu` / `cvresize` (albumentations and OpenCV semantics), `transforms`
(torchvision-style scene crops), `imagenet_prepare` (cache layout, tar extraction), `inspect`
(`taming data check`), `folder` (ImageFolderDataset), `demo` (SkimagePhotos), `io` (robust
decoding, skipping bad files).
"""
