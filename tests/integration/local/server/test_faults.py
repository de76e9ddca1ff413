"""Fault injection end to end: injected statuses, dropped connections, telemetry exemption."""

from __future__ import annotations

import pathlib

import pytest
import requests

from tinker.local import serve

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd


def test_injected_statuses_per_family(tmp_path: pathlib.Path) -> None:
    spec = "train.5xx=1,sample.429=1,poll.408=1,*.5xx=0"
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, faults=spec) as server:
        client = WireClient(server.url)
        session_id = client.session()
        failed = client.post(
            "create_model", {"session_id": session_id, "model_seq_id": 0, "base_model": "fake/tiny"}
        )
        assert failed.status_code == 503
        sampler_id = client.ok(
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
        )["sampling_session_id"]
        body = {
            "prompt": {"chunks": [{"tokens": [1]}]},
            "sampling_params": {},
            "sampling_session_id": sampler_id,
            "seq_id": 0,
        }
        assert client.post("asample", body).status_code == 429
        poll = client.post("retrieve_future", {"request_id": "abc"})
        assert poll.status_code == 408
        assert poll.json() == {"type": "try_again", "request_id": "abc", "queue_state": "active"}


def test_wildcard_faults_spare_telemetry(tmp_path: pathlib.Path) -> None:
    with serve(data_dir=tmp_path, backend=FakeBackend(), config=FAST, faults="*.5xx=1") as server:
        client = WireClient(server.url)
        assert client.post("create_session", {}).status_code == 503
        assert client.ok("telemetry", {"events": []}) == {"status": "accepted"}


def test_dropped_connections_and_dropped_responses(tmp_path: pathlib.Path) -> None:
    backend = FakeBackend()
    spec = "session.drop=1,train.drop_response=1"
    with serve(data_dir=tmp_path, backend=backend, config=FAST, faults=spec) as server:
        client = WireClient(server.url)
        with pytest.raises(requests.ConnectionError):
            client.post("create_session", {})
        assert server.engine.store.list_sessions(10, 0) == []  # dropped before handling
        session_id = server.engine.sessions.create([], None, "test")
        body = {"session_id": session_id, "model_seq_id": 0, "base_model": "fake/tiny"}
        with pytest.raises(requests.ConnectionError):
            client.post("create_model", body)
        # the response was lost but the op ran; a retry finds the same future
        request_id = f"{session_id}:train:0:0"
        assert client.result(request_id) == {"model_id": f"{session_id}:train:0"}
        assert backend.calls == ["create_model"]
        with pytest.raises(requests.ConnectionError):
            client.post("forward_backward", fwdbwd(f"{session_id}:train:0", 1))
        assert client.get("healthz").status_code == 200
