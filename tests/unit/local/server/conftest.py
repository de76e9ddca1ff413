"""Fixtures: a local server with the fake backend on a temporary data directory, and a client."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tinker.local import EngineConfig, serve
from tinker.local.server import LocalServer

from .fake_backend import FakeBackend
from .wire_client import WireClient

FAST = EngineConfig(
    long_poll_seconds=0.2,
    seq_gap_seconds=0.3,
    maintenance_seconds=0.05,
    session_idle_seconds=None,
)


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def server(tmp_path: pathlib.Path, backend: FakeBackend) -> Iterator[LocalServer]:
    with serve(data_dir=tmp_path / "data", backend=backend, config=FAST) as running:
        yield running


@pytest.fixture
def client(server: LocalServer) -> Iterator[WireClient]:
    with WireClient(server.url) as wire:
        yield wire
