"""A real local server per test, over loopback HTTP."""

from __future__ import annotations

import importlib
import pathlib
from collections.abc import Iterator
from typing import Any

import pytest


def local_server_module() -> Any:
    """tinker.local, or a skip while the embedded server is not part of the package."""
    local = importlib.import_module("tinker.local")
    if not hasattr(local, "serve"):
        pytest.skip("tinker.local.serve is not available in this build")
    return local


@pytest.fixture
def local_module() -> Iterator[Any]:
    """The tinker.local package; the process-wide shared server is closed after the test."""
    local = local_server_module()
    yield local
    local.close_shared_server()


@pytest.fixture
def server(tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)
    with local_server_module().serve(data_dir=tmp_path, long_poll_seconds=2.0) as running:
        yield running
