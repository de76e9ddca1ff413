from __future__ import annotations

from typing import Any

import pytest

import tinker.service_client
from tinker.cli.context import REST_RETRY_SECONDS, Connection, SdkClients
from tinker.rest_client import AdminClient, RestClient


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
    service = clients.service_client()
    assert clients.service_client() is service
    assert RecordingService.made == [{"base_url": "http://h:1", "api_key": "tml-k"}]
    clients.close()
    clients.close()
    assert service.closed == 1


def test_the_rest_client_needs_no_service_and_no_session() -> None:
    clients = SdkClients(Connection(base_url="http://127.0.0.1:1", api_key="tml-k"))
    rest = clients.rest_client()
    assert isinstance(rest, RestClient)
    assert clients.rest_client() is rest
    runtime = rest.holder
    assert runtime.session_id == ""
    assert runtime.telemetry is None and runtime._heartbeat is None
    assert runtime.config.submit_retry_seconds == REST_RETRY_SECONDS  # no 5-minute retries
    assert RecordingService.made == []
    clients.close()
    assert runtime.closed


def test_the_admin_client_shares_the_rest_clients_session_less_runtime() -> None:
    clients = SdkClients(Connection(base_url="http://127.0.0.1:1", api_key="tml-k"))
    admin = clients.admin_client()
    assert isinstance(admin, AdminClient)
    assert clients.admin_client() is admin
    rest = clients.rest_client()
    assert isinstance(rest, RestClient)
    assert admin.holder is rest.holder and admin.holder.session_id == ""
    assert RecordingService.made == []
    clients.close()
    assert admin.holder.closed


def test_missing_options_leave_the_environment_in_charge() -> None:
    clients = SdkClients(Connection())
    clients.service_client()
    assert RecordingService.made == [{}]


def test_closing_unused_clients_creates_nothing() -> None:
    SdkClients(Connection()).close()
    assert RecordingService.made == []
