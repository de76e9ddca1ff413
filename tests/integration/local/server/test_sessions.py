"""Sessions over real HTTP: lenient create_session, heartbeats, idle expiry unloading runs."""

from __future__ import annotations

import pathlib
import time

from tinker.local import EngineConfig, serve

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def test_create_session_is_lenient_about_missing_and_null_fields(client: WireClient) -> None:
    for body in (
        {},
        {"tags": None, "user_metadata": None, "sdk_version": None},
        {"tags": ["a"], "sdk_version": "0.5.1", "type": "create_session", "future_field": 1},
    ):
        answer = client.ok("create_session", body)
        assert set(answer) == {"type", "session_id"} and answer["type"] == "create_session"
    assert client.ok("session_heartbeat", {"session_id": answer["session_id"]}) == {
        "type": "session_heartbeat"
    }


def test_heartbeat_for_unknown_session_is_404(client: WireClient) -> None:
    response = client.post("session_heartbeat", {"session_id": "nope"})
    assert response.status_code == 404
    assert response.json() == {"detail": "Session 'nope' not found."}


def test_idle_sessions_expire_and_unload_their_runs(tmp_path: pathlib.Path) -> None:
    config = EngineConfig(long_poll_seconds=0.2, session_idle_seconds=0.2, maintenance_seconds=60)
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=config) as server:
        client = WireClient(server.url)
        session_id = client.session()
        model_id = client.model(session_id)
        kept = client.session()
        time.sleep(0.3)
        client.ok("session_heartbeat", {"session_id": kept})
        server.engine.maintain_once()
        expired = client.post("session_heartbeat", {"session_id": session_id})
        assert expired.status_code == 410 and "expired" in expired.json()["detail"]
        unloaded = client.post("forward_backward", fwdbwd(model_id, 1))
        assert unloaded.status_code == 410 and "has expired" in unloaded.json()["detail"]
        assert client.ok("session_heartbeat", {"session_id": kept}) == {"type": "session_heartbeat"}
        assert client.get(f"training_runs/{model_id}").status_code == 200  # metadata stays
