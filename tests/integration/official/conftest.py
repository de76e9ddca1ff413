"""Opt-in gate and the official SDK interpreters for the tests of this directory.

Everything here needs the official SDK venvs (built on first use by scripts/official_venvs.py,
which installs from the package registry) and runs for minutes: it only runs with TINKER_OPTIN=1.
"""

from __future__ import annotations

import os
import pathlib
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import official_venvs  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's `optin` tests unless TINKER_OPTIN=1."""
    if os.environ.get("TINKER_OPTIN") == "1":
        return
    skip = pytest.mark.skip(reason="opt-in: set TINKER_OPTIN=1 (builds the official SDK venvs)")
    for item in items:
        if "optin" in item.keywords and HERE in pathlib.Path(str(item.path)).parents:
            item.add_marker(skip)


def official_python(version: str) -> str:
    """The interpreter of the official SDK `version`, building its venv when missing."""
    python = official_venvs.official_python(version, create=True)
    assert python is not None
    return python
