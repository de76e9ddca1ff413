"""Shared fixtures for the reliability suite: embedded servers, fast client backoff, opt-in gate."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tinker import _poller, _retry
from tinker._retry import Backoff
from tinker.testing.plugin import ServerFactory

from .processes import ServerProcess

API_KEY = "tml-reliability-secret-0123456789"
MODEL = "tinker-local/tiny"
# Retry delays small enough that a run with ~10% failed requests still finishes in seconds.
FAST = Backoff(initial=0.01, maximum=0.05, jitter=0.25)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Skip `optin` tests of this directory unless TINKER_OPTIN=1."""
    if os.environ.get("TINKER_OPTIN") == "1":
        return
    skip = pytest.mark.skip(reason="opt-in: set TINKER_OPTIN=1")
    for item in items:
        if "optin" in item.keywords and "reliability" in str(item.path):
            item.add_marker(skip)


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)
    monkeypatch.delenv("TINKER_BASE_URL", raising=False)


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Shrink the transport, submit and poll backoff schedules for this test."""
    monkeypatch.setattr(_retry, "TRANSPORT_BACKOFF", FAST)
    monkeypatch.setattr(_retry, "SUBMIT_BACKOFF", FAST)
    monkeypatch.setattr(_poller, "POLL_BACKOFF", FAST)


@pytest.fixture
def make_server(tinker_server_factory: ServerFactory) -> Callable[..., Any]:
    """serve(...) with the default engine timings (the production ones the reliability tests
    are about) but a 1 s long poll, on a fresh data directory per call; every server is closed
    after the test (the tinker.testing plugin's factory)."""

    def make(**kwargs: Any) -> Any:
        kwargs.setdefault("config", None)  # serve() builds it from the timing arguments
        kwargs.setdefault("long_poll_seconds", 1.0)
        return tinker_server_factory(**kwargs)

    return make


@pytest.fixture
def make_client() -> Iterator[Callable[..., Any]]:
    """ServiceClient factory for a server URL; every client is closed after the test."""
    import tinker

    clients: list[Any] = []

    def make(url: str, **kwargs: Any) -> Any:
        kwargs.setdefault("api_key", API_KEY)
        client = tinker.ServiceClient(base_url=url, **kwargs)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


@pytest.fixture
def processes() -> Iterator[list[ServerProcess]]:
    """Servers in subprocesses: every one appended here is stopped after the test."""
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()
