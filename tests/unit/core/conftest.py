"""Fixtures of the core tests: an in-test service and runtimes pointed at it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from core_fake_service import FakeService, RuntimeFactory

from tinker._runtime import Runtime, RuntimeOptions
from tinker.config import ClientConfig


@pytest.fixture
def service() -> Iterator[FakeService]:
    with FakeService(hold=0.2) as svc:
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
        runtime = Runtime.start(cfg, options=options or RuntimeOptions(heartbeat=False))
        made.append(runtime)
        return runtime

    yield factory
    for runtime in made:
        runtime.close()
