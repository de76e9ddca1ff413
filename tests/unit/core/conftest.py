"""Fixtures of the core tests: the shared fake service and runtimes pointed at it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from core_helpers import Made, RuntimeFactory
from support.fake_service import FakeService

from tinker._runtime import Runtime, RuntimeOptions
from tinker._session import open_session
from tinker.config import ClientConfig


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService(session_id="sess-1", hold=0.2) as svc:
        yield svc


@pytest.fixture
def make_runtime(service: FakeService) -> Iterator[RuntimeFactory]:
    """Start runtimes on the service (telemetry and heartbeat off unless asked); closed after."""
    made: list[Runtime] = []

    def factory(*, telemetry: bool = False, options: RuntimeOptions | None = None,
                **config: Any) -> Runtime:  # fmt: skip
        cfg = ClientConfig(
            api_key="sk-test-key", base_url=service.url, telemetry=telemetry, **config
        )
        runtime = open_session(cfg, options=options or RuntimeOptions(heartbeat=False))
        made.append(runtime)
        return runtime

    yield factory
    for runtime in made:
        runtime.close()


@pytest.fixture
def make_transport() -> Iterator[Callable[..., Made]]:
    """Transports (closed after the test) on a config of `base_url` and keyword overrides."""
    made: list[Made] = []

    def factory(base_url: str, **config: Any) -> Made:
        cfg = ClientConfig(api_key="sk-very-secret", base_url=base_url, **config)
        made.append(Made(cfg))
        return made[-1]

    yield factory
    for item in made:
        item.transport.close()
