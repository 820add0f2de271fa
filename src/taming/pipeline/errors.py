"""The one exception of image-level sampling: a request that cannot be carried out.

`SampleError` is a `ConfigError`, so the CLI prints it as one line (exit code 2).
"""

from __future__ import annotations

from taming.config import ConfigError


class SampleError(ConfigError):
    """A sampling request that cannot be carried out (an option, file or model mismatch)."""
