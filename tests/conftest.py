"""Shared pytest fixtures.

`shared_dir`: the read-only reference folder (`../shared` next to the repository, or the
`TAMING_SHARED` environment variable). Tests that use it are skipped when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest


def _shared_path() -> Path:
    env = os.environ.get("TAMING_SHARED")
    return Path(env) if env else Path(__file__).resolve().parents[2] / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    """The shared reference folder (SPEC, fixtures, original configs, sample data)."""
    path = _shared_path()
    if not path.is_dir():
        pytest.skip(f"shared reference folder not found: {path} (set TAMING_SHARED)")
    return path
