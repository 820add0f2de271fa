"""Shared pytest fixtures.

`compat_dir`: the original implementation's reference outputs, copied into the repository
(`tests/fixtures/compat`, from `../shared/fixtures/compat`), so the parity tests run in any clone.
`legacy_configs`: the original project's YAML configs, verbatim (`configs/legacy`).
`shared_dir`: the read-only reference folder (`../shared` next to the repository, or the
`TAMING_SHARED` environment variable) with SPEC and the sample data. Tests that use it are
skipped when it is absent.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPAT_DIR = REPO / "tests" / "fixtures" / "compat"
LEGACY_CONFIGS = REPO / "configs" / "legacy"


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


@pytest.fixture(scope="session")
def compat_dir() -> Path:
    """The original implementation's reference outputs (`tests/fixtures/compat`)."""
    return COMPAT_DIR


@pytest.fixture(scope="session")
def legacy_configs() -> Path:
    """The original project's 10 YAML configs, verbatim."""
    return LEGACY_CONFIGS
