"""VQGAN first stage: encoder/decoder and the `VQModel` family."""

from taming.autoencoder.encoder_decoder import Decoder, Encoder
from taming.autoencoder.segmentation import VQSegmentationModel
from taming.autoencoder.vqmodel import EMAVQ, GumbelVQ, VQModel

__all__ = ["EMAVQ", "Decoder", "Encoder", "GumbelVQ", "VQModel", "VQSegmentationModel"]
