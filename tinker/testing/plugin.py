"""The pytest plugin (entry point `tinker` in the `pytest11` group): local-server fixtures.

Loaded by pytest wherever tinker-sync is installed, so it does nothing until a test asks for
one of its fixtures: no hook does work, no fixture is autouse, and `tinker.local` (numpy, the
model) is imported only when a server fixture runs.

Fixtures:
- `tinker_server`: a fresh `tinker.local` server for one test, in a temporary data directory,
  with fast settings; `@pytest.mark.tinker_faults("train.5xx=0.2,seed=1")` injects faults.
- `tinker_shared_server`: one such server for the whole test session (no faults).
- `tinker_server_factory`: `make(faults=None, **serve_kwargs)` starts more servers, each in its
  own temporary data directory; all are closed after the test.
- `tinker_faults`: the `Faults` that `tinker_server` runs with (its `injected` counter counts
  what was injected), None without the marker.
- `tinker_service_client`: a ServiceClient bound to `tinker_server`, closed after the test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from tinker.local import EngineConfig, Faults, LocalServer
    from tinker.service_client import ServiceClient

__all__ = [
    "API_KEY",
    "ServerFactory",
    "fast_engine_config",
    "tinker_faults",
    "tinker_server",
    "tinker_server_factory",
    "tinker_service_client",
    "tinker_shared_server",
]

FAULTS_MARKER = "tinker_faults"
#: The API key the client fixture sends (the servers check none unless given `api_key=`).
API_KEY = "tinker-testing-key"

# serve(...) keyword arguments -> a running server (faults: a spec string or Faults).
ServerFactory = Callable[..., "LocalServer"]


def pytest_configure(config: pytest.Config) -> None:
    """Declare the marker (so --strict-markers accepts it); nothing else happens here."""
    config.addinivalue_line(
        "markers",
        f"{FAULTS_MARKER}(spec): inject faults into the tinker_server fixture's server "
        '(a tinker.local fault spec such as "train.5xx=0.2,seed=1")',
    )


def fast_engine_config() -> EngineConfig:
    """Engine settings for tests: short long polls and maintenance ticks, sessions that never
    expire while a debugger holds a test."""
    from tinker.local import EngineConfig

    return EngineConfig(long_poll_seconds=1.0, maintenance_seconds=0.1, session_idle_seconds=None)


class _Servers:
    """Starts servers in fresh temporary data directories and closes them all at the end."""

    def __init__(self, tmp_path_factory: pytest.TempPathFactory) -> None:
        self._tmp = tmp_path_factory
        self._running: list[LocalServer] = []

    def start(self, *, faults: Faults | str | None = None, **serve_kwargs: Any) -> LocalServer:
        import tinker.local

        serve_kwargs.setdefault("config", fast_engine_config())
        serve_kwargs.setdefault("data_dir", self._tmp.mktemp("tinker-local"))
        server = tinker.local.serve(faults=faults, **serve_kwargs)
        self._running.append(server)
        return server

    def close(self) -> None:
        while self._running:
            self._running.pop().close()


@pytest.fixture
def tinker_server_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerFactory]:
    """`make(faults=None, **serve_kwargs)`: a new local server per call (fast settings unless
    `config=` is given, a fresh temporary data directory unless `data_dir=` is); every one is
    closed after the test."""
    servers = _Servers(tmp_path_factory)
    try:
        yield servers.start
    finally:
        servers.close()


@pytest.fixture
def tinker_faults(request: pytest.FixtureRequest) -> Faults | None:
    """The fault injector that `tinker_server` runs with: built from the test's
    `tinker_faults(spec)` marker (see its `injected` counter), None without the marker."""
    marker = request.node.get_closest_marker(FAULTS_MARKER)
    if marker is None:
        return None
    if len(marker.args) != 1 or not isinstance(marker.args[0], str) or marker.kwargs:
        raise TypeError(f"@pytest.mark.{FAULTS_MARKER} takes one fault spec string")
    from tinker.local import Faults

    return Faults.parse(marker.args[0])  # ValueError names what is malformed


@pytest.fixture
def tinker_server(
    tinker_faults: Faults | None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LocalServer]:
    """A local server for this test (fast settings, any API key), with the marker's faults."""
    servers = _Servers(tmp_path_factory)
    try:
        yield servers.start(faults=tinker_faults)
    finally:
        servers.close()


@pytest.fixture(scope="session")
def tinker_shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """One local server for the whole test session (fast settings, no faults)."""
    servers = _Servers(tmp_path_factory)
    try:
        yield servers.start()
    finally:
        servers.close()


@pytest.fixture
def tinker_service_client(tinker_server: LocalServer) -> Iterator[ServiceClient]:
    """A ServiceClient on `tinker_server` (telemetry off), closed after the test.

    To share one server across tests, override `tinker_server` in a conftest.py:
    `def tinker_server(tinker_shared_server): return tinker_shared_server`.
    """
    from tinker.service_client import ServiceClient

    client = ServiceClient(base_url=tinker_server.url, api_key=API_KEY, telemetry=False)
    try:
        yield client
    finally:
        client.close()
