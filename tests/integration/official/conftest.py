"""Opt-in gate and the official SDK interpreters for the tests of this directory.

Everything here needs the official SDK venvs (built on first use by scripts/official_venvs.py,
which installs from the package registry) and runs for minutes: it only runs with TINKER_OPTIN=1.
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from support.optin import skip_unless_opted_in

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import official_venvs  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's `optin` tests unless TINKER_OPTIN=1."""
    skip_unless_opted_in(items, HERE, "builds the official SDK venvs")


def official_python(version: str) -> str:
    """The interpreter of the official SDK `version`, building its venv when missing."""
    python = official_venvs.official_python(version, create=True)
    assert python is not None
    return python
