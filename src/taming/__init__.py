"""taming: VQGAN and autoregressive transformers for high-resolution image synthesis.

A re-implementation of "Taming Transformers for High-Resolution Image Synthesis" (Esser,
Rombach, Ommer, CVPR 2021) that loads the original checkpoints and YAML configs unchanged.
"""

from taming.config import instantiate_from_config, load_config

__version__ = "0.1.0"

__all__ = ["__version__", "create_model", "instantiate_from_config", "load", "load_config"]


def __getattr__(name: str):
    # `taming.load` is resolved lazily so `import taming` stays light.
    if name == "load":
        from taming.loading import load

        return load
    if name == "create_model":
        from taming.registry import create_model

        return create_model
    raise AttributeError(f"module 'taming' has no attribute {name!r}")
