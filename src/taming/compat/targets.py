"""Legacy `target:` strings of the original CompVis/taming-transformers configs -> our classes.

`instantiate_from_config` looks a target up here first; anything not listed is imported as is.
Targets whose original module path also exists in this package (e.g. `taming.models.vqgan`)
resolve without an entry, but are listed anyway so the table documents the whole mapping.
"""

from __future__ import annotations

LEGACY_TARGETS: dict[str, str] = {
    # first stage
    "taming.models.vqgan.VQModel": "taming.autoencoder.vqmodel.VQModel",
    "taming.models.vqgan.GumbelVQ": "taming.autoencoder.vqmodel.GumbelVQ",
    "taming.models.vqgan.EMAVQ": "taming.autoencoder.vqmodel.EMAVQ",
    "taming.models.vqgan.VQSegmentationModel": (
        "taming.autoencoder.segmentation.VQSegmentationModel"
    ),
    "taming.modules.diffusionmodules.model.Encoder": "taming.autoencoder.encoder_decoder.Encoder",
    "taming.modules.diffusionmodules.model.Decoder": "taming.autoencoder.encoder_decoder.Decoder",
    # quantizers
    "taming.modules.vqvae.quantize.VectorQuantizer2": "taming.quantize.vq.VectorQuantizer",
    "taming.modules.vqvae.quantize.VectorQuantizer": "taming.quantize.vq.VectorQuantizer",
    "taming.modules.vqvae.quantize.GumbelQuantize": "taming.quantize.gumbel.GumbelQuantize",
    "taming.modules.vqvae.quantize.EMAVectorQuantizer": "taming.quantize.ema.EMAVectorQuantizer",
    # losses
    "taming.modules.losses.vqperceptual.VQLPIPSWithDiscriminator": (
        "taming.losses.vqperceptual.VQLPIPSWithDiscriminator"
    ),
    "taming.modules.losses.vqperceptual.DummyLoss": "taming.losses.dummy.DummyLoss",
    "taming.modules.losses.DummyLoss": "taming.losses.dummy.DummyLoss",
    "taming.modules.losses.segmentation.BCELossWithQuant": (
        "taming.losses.segmentation.BCELossWithQuant"
    ),
    "taming.modules.losses.segmentation.BCELoss": "taming.losses.segmentation.BCELoss",
    "taming.modules.losses.lpips.LPIPS": "taming.losses.lpips.LPIPS",
    "taming.modules.discriminator.model.NLayerDiscriminator": (
        "taming.losses.discriminator.NLayerDiscriminator"
    ),
    # schedules
    "taming.lr_scheduler.LambdaWarmUpCosineScheduler": (
        "taming.schedules.LambdaWarmUpCosineScheduler"
    ),
    # second stage (added with the transformer issue)
    "taming.models.cond_transformer.Net2NetTransformer": "taming.cond.net2net.Net2NetTransformer",
    "taming.modules.transformer.mingpt.GPT": "taming.transformer.gpt.GPT",
    "taming.modules.transformer.permuter.Identity": "taming.transformer.permuter.Identity",
    "taming.modules.transformer.permuter.Subsample": "taming.transformer.permuter.Subsample",
    "taming.modules.transformer.permuter.ZCurve": "taming.transformer.permuter.ZCurve",
    "taming.modules.transformer.permuter.SpiralOut": "taming.transformer.permuter.SpiralOut",
    "taming.modules.transformer.permuter.SpiralIn": "taming.transformer.permuter.SpiralIn",
    "taming.modules.transformer.permuter.Random": "taming.transformer.permuter.Random",
    "taming.modules.transformer.permuter.AlternateParsing": (
        "taming.transformer.permuter.AlternateParsing"
    ),
    "taming.modules.util.SOSProvider": "taming.cond.stages.SOSProvider",
    "taming.modules.util.Labelator": "taming.cond.stages.Labelator",
    "taming.modules.misc.coord.CoordStage": "taming.cond.stages.CoordStage",
    "taming.models.dummy_cond_stage.DummyCondStage": "taming.cond.stages.DummyCondStage",
    # training entry point (added with the training issue)
    "main.DataModuleFromConfig": "taming.train.datamodule.DataModuleFromConfig",
    "cutlit.DataModuleFromConfig": "taming.train.datamodule.DataModuleFromConfig",
    "main.WrappedDataset": "taming.train.datamodule.WrappedDataset",
    "main.ImageLogger": "taming.train.callbacks.ImageLogger",
    "main.LearningRateMonitor": "lightning.pytorch.callbacks.LearningRateMonitor",
}

# ---------------------------------------------------------------------------------------------
# the allow list: which `target:` strings a config may name without being trusted

# Namespaces whose classes configs legitimately name. Only classes are allowed under them
# (no functions such as `os.system` or `taming.loading.load(unsafe=True)`).
ALLOWED_CLASS_PREFIXES: tuple[str, ...] = (
    "taming.",
    "torch.nn.",
    "torch.optim.",
    "lightning.pytorch.callbacks.",
    "lightning.pytorch.loggers.",
)

TRUSTED_TARGETS_ENV = "TAMING_TRUSTED_TARGETS"


def allowed_prefix(resolved: str, extra: tuple[str, ...] = ()) -> bool:
    """True if a (resolved) dotted target lies in an allowed namespace (before importing it)."""
    return any(resolved.startswith(p) for p in (*ALLOWED_CLASS_PREFIXES, *extra))
