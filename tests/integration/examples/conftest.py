"""Fixtures for the example tests: the session's shared local server (tinker.testing plugin),
examples importable by name."""

from __future__ import annotations

import importlib
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest

from tinker.local import LocalServer

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[3] / "examples"


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


def run_script(
    script: str, *args: str, data_dir: pathlib.Path, timeout: float = 120.0
) -> subprocess.CompletedProcess[str]:
    """Run an example as a script with its defaults (base_url "local": an in-process server)."""
    env = {
        **os.environ,
        "TINKER_LOCAL_DATA_DIR": str(data_dir),
        "TINKER_TELEMETRY": "0",
    }
    env.pop("TINKER_API_KEY", None)
    env.pop("TINKER_BASE_URL", None)
    return subprocess.run(
        [sys.executable, str(EXAMPLES_DIR / script), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
