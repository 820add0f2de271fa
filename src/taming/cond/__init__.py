"""Conditioning stages and the `Net2NetTransformer` that ties first stage, condition and GPT."""

from taming.cond.net2net import Net2NetTransformer
from taming.cond.stages import CoordStage, DummyCondStage, Labelator, SOSProvider

__all__ = ["CoordStage", "DummyCondStage", "Labelator", "Net2NetTransformer", "SOSProvider"]
