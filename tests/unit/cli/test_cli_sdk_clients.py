from __future__ import annotations

from typing import Any

import pytest

import tinker.service_client
from tinker.cli.context import Connection, SdkClients


class RecordingService:
    made: list[dict[str, Any]] = []

    def __init__(self, **kwargs: Any) -> None:
        self.made.append(kwargs)
        self.closed = 0

    def create_rest_client(self) -> str:
        return "rest"

    def close(self) -> None:
        self.closed += 1


@pytest.fixture(autouse=True)
def recording(monkeypatch: pytest.MonkeyPatch) -> None:
    RecordingService.made = []
    monkeypatch.setattr(tinker.service_client, "ServiceClient", RecordingService)


def test_explicit_options_are_passed_and_one_service_is_shared() -> None:
    clients = SdkClients(Connection(base_url="http://h:1", api_key="tml-k"))
    assert clients.rest_client() == "rest"
    service = clients.service_client()
    assert clients.rest_client() == "rest"
    assert RecordingService.made == [{"base_url": "http://h:1", "api_key": "tml-k"}]
    clients.close()
    clients.close()
    assert service.closed == 1


def test_missing_options_leave_the_environment_in_charge() -> None:
    clients = SdkClients(Connection())
    clients.service_client()
    assert RecordingService.made == [{}]


def test_closing_unused_clients_creates_nothing() -> None:
    SdkClients(Connection()).close()
    assert RecordingService.made == []
