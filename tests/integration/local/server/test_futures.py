"""Server-side futures over real HTTP: 408 while pending, long-poll wake-up, 404 and 410."""

from __future__ import annotations

import threading
from typing import Any

from tinker.local import EngineConfig, serve

from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def test_pending_poll_answers_408_try_again(client: WireClient, backend: FakeBackend) -> None:
    model_id = client.model(client.session())
    backend.gate.clear()
    try:
        request_id = client.submit("forward_backward", fwdbwd(model_id, 1))
        response = client.post("retrieve_future", {"request_id": request_id})
        assert response.status_code == 408
        assert response.json() == {
            "type": "try_again",
            "request_id": request_id,
            "queue_state": "active",
            "queue_state_reason": "Not finished after 0.2 s.",
        }
    finally:
        backend.gate.set()
    assert "loss_fn_outputs" in client.result(request_id)


def test_long_poll_returns_as_soon_as_the_result_is_ready(tmp_path: Any) -> None:
    backend = FakeBackend()
    config = EngineConfig(long_poll_seconds=30.0, session_idle_seconds=None)
    with serve(data_dir=tmp_path, backend=backend, config=config) as server:
        client = WireClient(server.url)
        model_id = client.model(client.session())
        backend.gate.clear()
        request_id = client.submit("forward_backward", fwdbwd(model_id, 1))
        answers: list[Any] = []
        poll = threading.Thread(
            target=lambda: answers.append(
                client.post("retrieve_future", {"request_id": request_id})
            )
        )
        poll.start()
        poll.join(0.3)
        assert poll.is_alive()  # held by the server while the op is blocked
        backend.gate.set()
        poll.join(10)  # far below the 30 s long-poll bound
        assert not poll.is_alive()
        assert answers[0].status_code == 200 and "loss_fn_outputs" in answers[0].json()


def test_unknown_and_expired_futures(tmp_path: Any) -> None:
    config = EngineConfig(long_poll_seconds=0.2, result_grace_seconds=0.0, maintenance_seconds=60)
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=config) as server:
        client = WireClient(server.url)
        missing = client.post("retrieve_future", {"request_id": "no-such-id"})
        assert missing.status_code == 404
        assert missing.json() == {
            "detail": "Future 'no-such-id' is unknown to this server: it was never submitted "
            "here, or the server restarted since then, losing the work in progress. To resume a "
            "training run, start from its last checkpoint: "
            "create_training_client_from_state_with_optimizer(<its last checkpoint>)."
        }
        model_id = client.model(client.session())
        request_id = client.submit("forward_backward", fwdbwd(model_id, 1))
        client.result(request_id)
        server.engine.maintain_once()
        expired = client.post("retrieve_future", {"request_id": request_id})
        assert expired.status_code == 410
        assert "expired" in expired.json()["detail"]
