"""Fixtures: local servers on temporary data directories (fake backend, or the real numpy one),
started by the tinker.testing plugin's server factory."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tinker.local import EngineConfig, LocalServer
from tinker.testing.plugin import ServerFactory

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
def server(tinker_server_factory: ServerFactory, backend: FakeBackend) -> LocalServer:
    return tinker_server_factory(backend=backend, config=FAST)


@pytest.fixture
def client(server: LocalServer) -> Iterator[WireClient]:
    with WireClient(server.url) as wire:
        yield wire


@pytest.fixture
def real_server(tinker_server_factory: ServerFactory) -> LocalServer:
    config = EngineConfig(long_poll_seconds=0.5, seq_gap_seconds=0.5, session_idle_seconds=None)
    return tinker_server_factory(config=config)


@pytest.fixture
def real_client(real_server: LocalServer) -> Iterator[WireClient]:
    with WireClient(real_server.url) as wire:
        yield wire
