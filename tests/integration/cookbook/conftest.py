"""Opt-in gate and the cookbook interpreter for the tests of this directory.

These tests run tinker-cookbook 0.6.1 (built into its own venv by scripts/cookbook_venv.py,
which installs from the package registry) against tinker.local and take minutes: they only run
with TINKER_OPTIN=1.
"""

from __future__ import annotations

import pathlib
import sys

import pytest
from support.optin import skip_unless_opted_in

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "scripts"))

import cookbook_venv  # noqa: E402


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip this directory's `optin` tests unless TINKER_OPTIN=1."""
    skip_unless_opted_in(items, HERE, "builds the cookbook venv")


@pytest.fixture(scope="session")
def cookbook_python() -> str:
    """The cookbook venv's interpreter, building the venv when missing."""
    python = cookbook_venv.cookbook_python(create=True)
    assert python is not None
    return python
