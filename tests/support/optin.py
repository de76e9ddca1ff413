"""The opt-in gate of test directories whose tests build venvs and run for minutes."""

from __future__ import annotations

import os
import pathlib

import pytest


def skip_unless_opted_in(items: list[pytest.Item], directory: pathlib.Path, why: str) -> None:
    """Skip the `optin` tests under `directory` unless TINKER_OPTIN=1 (`why`: what they need)."""
    if os.environ.get("TINKER_OPTIN") == "1":
        return
    skip = pytest.mark.skip(reason=f"opt-in: set TINKER_OPTIN=1 ({why})")
    for item in items:
        if "optin" in item.keywords and directory in pathlib.Path(str(item.path)).parents:
            item.add_marker(skip)
