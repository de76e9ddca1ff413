"""The simple endpoints over real HTTP: health, capabilities, client/config, telemetry."""

from __future__ import annotations

from .wire_client import WireClient


def test_health_and_capabilities(client: WireClient) -> None:
    assert client.get("healthz").json() == {"status": "ok"}
    assert client.get("get_server_capabilities").json() == {
        "supported_models": [
            {"model_name": name, "max_context_length": None, "trainable": True, "sampleable": True}
            for name in ("fake/small", "fake/tiny")
        ]
    }


def test_telemetry_is_accepted(client: WireClient) -> None:
    body = {"events": [], "platform": "Linux", "sdk_version": "0.5.1", "session_id": "s"}
    assert client.ok("telemetry", body) == {"status": "accepted"}
