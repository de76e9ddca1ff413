"""Fixtures for the example tests: a local server per module, examples importable by name."""

from __future__ import annotations

import importlib
import os
import pathlib
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any

import pytest

EXAMPLES_DIR = pathlib.Path(__file__).resolve().parents[3] / "examples"


def _local() -> Any:
    local = importlib.import_module("tinker.local")
    if not hasattr(local, "serve"):
        pytest.skip("tinker.local.serve is not available in this build")
    return local


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """One embedded server (own data directory) shared by a test module."""
    with _local().serve(data_dir=tmp_path_factory.mktemp("server")) as running:
        yield running


@pytest.fixture
def connection(server: Any, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Keyword arguments that point an example's main() at the module's server."""
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    return {"base_url": server.url, "api_key": "examples-test-key"}


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
