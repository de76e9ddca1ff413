"""Fixtures for the example tests: the session's shared local server (tinker.testing plugin),
examples importable by name."""

from __future__ import annotations

import importlib
import pathlib
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from example_scripts import EXAMPLES_DIR

from tinker.local import LocalServer


@pytest.fixture
def connection(
    tinker_shared_server: LocalServer, monkeypatch: pytest.MonkeyPatch
) -> dict[str, str]:
    """Keyword arguments that point an example's main() at the session's shared server."""
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    return {"base_url": tinker_shared_server.url, "api_key": "examples-test-key"}


@pytest.fixture
def example(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], ModuleType]]:
    """Import an example module by name (the examples import their siblings the same way)."""
    monkeypatch.syspath_prepend(str(EXAMPLES_DIR))
    yield importlib.import_module
    for name, module in list(sys.modules.items()):
        if pathlib.Path(getattr(module, "__file__", None) or "/").parent == EXAMPLES_DIR:
            del sys.modules[name]
