"""Image-level sampling from a trained `Net2NetTransformer` (what `taming sample` runs).

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021):
the transformer draws first-stage codes after a condition (SOS token, class token, the codes of
a segmentation/depth map, a layout), the first stage decodes them to pixels. This package puts
the token-level samplers of `taming.sampling` behind image-level functions; it sits above
`taming.cond` (the models) and below `taming.commands`:

- `sample`: `sample_images(model, n, cond=..., size=...)`, `iter_samples`;
- `completion`: `complete_image(model, image, keep_top=0.5 | mask=...)`;
- `rejection`: `rejection_sample(model, n, scorer, acceptance)`, `load_scorer`;
- `conditions`: what a batch is conditioned on (`coordinate_map` for FacesHQ models);
- `files`: `load_condition` (label maps, depth maps, images, layout tokens);
- `geometry`: first-stage factor, training window, latent grid;
- `output`: reconstructions, masks and condition images for the grids;
- `run`: `run_sampling(SampleOptions(...))`, the `taming sample` command.

Model loading is `taming.loading.load_sampling_model` (the same loader as `taming.load`).
Images are float tensors `(N, 3, H, W)` in [-1, 1] on the CPU; tokens are `(N, h, w)` code
grids in raster order. Errors the caller can fix raise `SampleError` (a `ConfigError`, so the
CLI prints them as one line).
"""

from taming.images import make_grid, save_images, to_pil
from taming.loading import load_sampling_model
from taming.pipeline.completion import complete_image
from taming.pipeline.conditions import coordinate_map
from taming.pipeline.errors import SampleError
from taming.pipeline.files import load_condition, load_image_tensor, load_mask
from taming.pipeline.geometry import first_stage_factor, latent_grid, training_window
from taming.pipeline.rejection import Scorer, load_scorer, rejection_sample
from taming.pipeline.run import (
    SampleOptions,
    SampleResult,
    parse_classes,
    parse_size,
    run_sampling,
)
from taming.pipeline.sample import iter_samples, sample_images

__all__ = [
    "SampleError",
    "SampleOptions",
    "SampleResult",
    "Scorer",
    "complete_image",
    "coordinate_map",
    "first_stage_factor",
    "iter_samples",
    "latent_grid",
    "load_condition",
    "load_image_tensor",
    "load_mask",
    "load_sampling_model",
    "load_scorer",
    "make_grid",
    "parse_classes",
    "parse_size",
    "rejection_sample",
    "run_sampling",
    "sample_images",
    "save_images",
    "to_pil",
    "training_window",
]
