"""Alias module: `from taming.models.cond_transformer import Net2NetTransformer` as originally.

The class lives in `taming.cond.net2net` and takes the original constructor arguments.
"""

from taming.cond.net2net import Net2NetTransformer

__all__ = ["Net2NetTransformer"]
