"""`taming demo`: train a small VQGAN on the photos bundled with scikit-image, on a CPU.

Nothing is downloaded: `taming.data.demo.SkimagePhotos` serves random crops of the colour
photos that ship inside scikit-image (astronaut, chelsea, coffee, rocket, ...). The demo is a
list of stages, each a function `stage(ctx) -> StageResult`; they run in order and share a
`DemoContext` (output folder, seed, results of earlier stages). Today there is one stage:

`vqgan_stage` trains a small VQGAN (f4, 16x16 codes at 64 px, L1 reconstruction, PatchGAN
discriminator from 60% of the steps on; 1000 steps of 4 crops, about 5 minutes on 2 CPU
cores, stopped early after `max_minutes` of training if the machine is slower) with the
regular trainer (`taming.train.run.run_training`), then writes into the output folder:

- `inputs.png`, `reconstructions_step0.png` (untrained), `reconstructions.png` (trained):
  16 fixed validation crops;
- `metrics.json`: PSNR (dB) of those crops before and after training (`psnr_before`,
  `psnr_after`), codebook usage and perplexity on them, steps, seconds;
- `checkpoints/last.ckpt` and `configs/` (so `taming.load(out)` loads the model), `metrics.csv`.

`transformer_stage` (the second stage, Esser et al. §3.2) encodes random training crops
once with the trained tokenizer (`ctx.results["vqgan"].out`), trains a small unconditional
GPT (SOS prefix) on the code sequences (minGPT AdamW, warmup + cosine learning rate; about
2 minutes on 2 CPU cores, stopped after `transformer_max_minutes`), saves it as a
`Net2NetTransformer` run folder (`<out>/transformer`: `taming.load` and `taming sample -r`
read it) and writes, with `taming.pipeline`:

- `samples.png`: 16 unconditional samples;
- `completion.png`: 8 validation photos, each as original | top half kept | 2 completions;
- `sliding_wide.png`: samples twice as wide as the training crops (sliding window);
- `metrics.json` (`"transformer"` entry): cross-entropy of fixed training and validation
  codes before and after training (nats per token), steps, seconds.

Samples of a tiny model trained for two minutes on eight photos are rough: colours and
textures of the photos, little structure.
"""

from __future__ import annotations

from taming.train.demo.context import DEMO_TRANSFORMER_STEPS, DemoContext, Stage, StageResult
from taming.train.demo.transformer import demo_transformer_config, train_code_gpt, transformer_stage
from taming.train.demo.vqgan import demo_vqgan_config, vqgan_stage

__all__ = [
    "DEMO_TRANSFORMER_STEPS",
    "STAGES",
    "DemoContext",
    "StageResult",
    "demo_transformer_config",
    "demo_vqgan_config",
    "run_demo",
    "train_code_gpt",
    "transformer_stage",
    "vqgan_stage",
]

# Stages run in order; later stages read earlier results from ctx.results[name].
STAGES: list[Stage] = [vqgan_stage, transformer_stage]


def run_demo(ctx: DemoContext, stages: list[Stage] | None = None) -> list[StageResult]:
    """Run the demo stages in order; returns their results."""
    results = []
    for stage in STAGES if stages is None else stages:
        res = stage(ctx)
        ctx.results[res.name] = res
        results.append(res)
    return results
