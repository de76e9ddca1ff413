"""Fixtures: local servers on temporary data directories (fake backend, or the real numpy one)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tinker.local import EngineConfig, LocalServer, serve

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


@pytest.fixture
def real_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    config = EngineConfig(long_poll_seconds=0.5, seq_gap_seconds=0.5, session_idle_seconds=None)
    with serve(data_dir=tmp_path / "real", config=config) as running:
        yield running


@pytest.fixture
def real_client(real_server: LocalServer) -> Iterator[WireClient]:
    with WireClient(real_server.url) as wire:
        yield wire
