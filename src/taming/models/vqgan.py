"""Alias module: `from taming.models.vqgan import VQModel, GumbelVQ` as in the original project.

The classes live in `taming.autoencoder`; they accept the original constructor arguments, so
downstream code written for CompVis/taming-transformers runs unchanged.
"""

from taming.autoencoder.segmentation import VQSegmentationModel
from taming.autoencoder.vqmodel import EMAVQ, GumbelVQ, VQModel

__all__ = ["EMAVQ", "GumbelVQ", "VQModel", "VQSegmentationModel"]
