"""Fixtures of the CLI tests: the CLI run in-process on real clients of the shared fake."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cli_fakes import Cli, FakeClients, FakeRest, SdkSession
from support.fake_service import FakeService


@pytest.fixture
def sdk() -> Iterator[SdkSession]:
    """A ServiceClient (made on first use) on a fresh fake service."""
    with FakeService() as http:
        session = SdkSession(http)
        yield session
        session.close()


@pytest.fixture
def rest(sdk: SdkSession) -> FakeRest:
    return FakeRest(sdk)


@pytest.fixture
def cli(rest: FakeRest) -> Cli:
    return Cli(FakeClients(rest))
