"""Image-level sampling from a trained `Net2NetTransformer` (what `taming sample` runs).

"Taming Transformers for High-Resolution Image Synthesis" (Esser, Rombach, Ommer, CVPR 2021):
the transformer draws first-stage codes after a condition (SOS token, class token, the codes of
a segmentation/depth map, a layout), the first stage decodes them to pixels. This package puts
the token-level samplers of `taming.sampling` behind image-level functions; it sits above
`taming.cond` (the models) and below `taming.commands`:

- `sample`: `sample_images(model, n, cond=..., size=...)`, `iter_samples`;
- `completion`: `complete_image(model, image, keep_top=0.5 | mask=...)`;
- `rejection`: `rejection_sample(model, n, scorer, acceptance)`, `load_scorer`;
- `conditions`: what a batch is conditioned on and the grid plan (window or sliding);
- `files`: `load_condition` (label maps, depth maps, images, layout tokens), `load_mask`;
- `output`: reconstructions, masks and condition images for the grids;
- `cost`: tokens, decode memory and time of a request, said before it starts;
- `options`: `SampleOptions`, their checks and the fresh output folder they name;
- `from_data`: conditions (and ground truth) from the run config's dataset;
- `run`: `run_sampling(SampleOptions(...))`, the `taming sample` command.

The model answers for its geometry, conditions and decoding (`taming.cond.generation`);
decoding settings are one `taming.sampling.SamplingConfig`. Model loading is
`taming.loading.load_sampling_model` (the same loader as `taming.load`).
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
from taming.pipeline.options import SampleOptions, SampleResult, parse_classes, parse_size
from taming.pipeline.rejection import Scorer, load_scorer, rejection_sample
from taming.pipeline.run import class_seed, run_sampling
from taming.pipeline.sample import iter_samples, sample_images
from taming.sampling.config import SamplingConfig

__all__ = [
    "SampleError",
    "SampleOptions",
    "SampleResult",
    "Scorer",
    "SamplingConfig",
    "class_seed",
    "complete_image",
    "coordinate_map",
    "iter_samples",
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
]
