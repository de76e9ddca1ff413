"""The SDK against tinker.local (0.38, sample_cancel on): a sample whose future the caller
cancels, or that is still pending when its client closes, is cancelled on the server with
`cancel_future` (the exact body, once, without the public-method headers), and stops being
polled; a queued sample cancelled that way never runs."""

from __future__ import annotations

import json
import pathlib
import threading
import time
from collections.abc import Iterator
from typing import Any

import attrs
import pytest
import requests
import requests.adapters

import tinker
from tinker import types
from tinker._workers import ClientClosedError
from tinker.local import LocalServer, serve

from .conftest import FAST
from .fake_backend import FakeBackend

PROMPT = types.ModelInput.from_ints([1, 2, 3])


class AnswerRecorder(requests.adapters.HTTPAdapter):
    """A stock adapter that remembers (path, headers, JSON body, JSON answer) of requests."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[tuple[str, dict[str, str], Any, Any]] = []
        self._lock = threading.Lock()

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> Any:
        response = super().send(request, *args, **kwargs)
        path = requests.utils.urlparse(request.url).path
        body = request.body
        parsed_body = json.loads(body) if isinstance(body, (bytes, str)) and body else None
        answer = None
        if response.headers.get("Content-Type", "").startswith("application/json"):
            answer = json.loads(response.content)
            response.raw = None  # the client reads the body kept in memory
        with self._lock:
            self.sent.append((path, dict(request.headers), parsed_body, answer))
        return response

    def to(self, path: str) -> list[tuple[dict[str, str], Any, Any]]:
        with self._lock:
            return [(h, body, answer) for p, h, body, answer in self.sent if p == path]

    def wait_for(self, path: str, count: int, timeout: float = 10.0) -> None:
        deadline = time.monotonic() + timeout
        while len(self.to(path)) < count:
            assert time.monotonic() < deadline, f"{path} was not sent {count} times"
            time.sleep(0.01)


@pytest.fixture
def one_worker(tmp_path: pathlib.Path, backend: FakeBackend) -> Iterator[LocalServer]:
    config = attrs.evolve(FAST, sample_workers=1)
    with serve(data_dir=tmp_path / "data", backend=backend, config=config) as server:
        yield server


@pytest.fixture(autouse=True)
def _quiet_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TINKER_TELEMETRY", "0")
    monkeypatch.delenv("TINKER_API_KEY", raising=False)


def _request_id(adapter: AnswerRecorder, index: int) -> str:
    adapter.wait_for("/api/v1/asample", index + 1)
    request_id: str = adapter.to("/api/v1/asample")[index][2]["request_id"]
    return request_id


def test_abandoned_samples_are_cancelled_on_the_server(
    one_worker: LocalServer, backend: FakeBackend
) -> None:
    adapter = AnswerRecorder()
    service = tinker.ServiceClient(
        base_url=one_worker.url, api_key="tml-k", telemetry=False, http_adapter=adapter
    )
    assert service.holder.server.sample_cancel
    sampler = service.create_sampling_client(base_model="fake/tiny")
    params = types.SamplingParams(max_tokens=3)
    backend.gate.clear()
    backend.entered.clear()
    running = sampler.sample(PROMPT, 1, params)
    assert backend.entered.wait(10)  # the one sample worker holds it
    running_id = _request_id(adapter, 0)
    queued = sampler.sample(PROMPT, 1, params)
    queued_id = _request_id(adapter, 1)

    assert queued.cancel()
    adapter.wait_for("/api/v1/cancel_future", 1)
    ((headers, body, answer),) = adapter.to("/api/v1/cancel_future")
    assert body == {"request_id": queued_id}
    assert answer == {}
    assert "x-sdk-method" not in {name.lower() for name in headers}
    polls_after_cancel = len(adapter.to("/api/v1/retrieve_future"))

    left = sampler.sample(PROMPT, 1, params)  # still pending when the client closes
    left_id = _request_id(adapter, 2)
    service.close()
    cancels = [body["request_id"] for _, body, _ in adapter.to("/api/v1/cancel_future")]
    assert sorted(cancels) == sorted([queued_id, running_id, left_id])  # each once
    with pytest.raises(ClientClosedError):
        left.result(timeout=5)
    assert running.done() and not running.cancelled()

    backend.gate.set()
    deadline = time.monotonic() + 10
    while backend.calls.count("sample") < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.3)
    # The running sample finished; the two queued ones were cancelled before they ran.
    assert backend.calls.count("sample") == 1
    # Nothing polled the cancelled sample afterwards.
    polled = [
        body["request_id"]
        for _, body, _ in adapter.to("/api/v1/retrieve_future")[polls_after_cancel:]
    ]
    assert queued_id not in polled


def test_a_server_without_sample_cancel_gets_no_cancels(
    tmp_path: pathlib.Path, backend: FakeBackend
) -> None:
    adapter = AnswerRecorder()
    config = attrs.evolve(FAST, sample_workers=1)
    with serve(
        data_dir=tmp_path / "data",
        backend=backend,
        config=config,
        protocol="0.38,sample_cancel=off",
    ) as server:
        service = tinker.ServiceClient(
            base_url=server.url, api_key="tml-k", telemetry=False, http_adapter=adapter
        )
        sampler = service.create_sampling_client(base_model="fake/tiny")
        backend.gate.clear()
        pending = sampler.sample(PROMPT, 1, types.SamplingParams(max_tokens=3))
        _request_id(adapter, 0)
        assert pending.cancel()
        service.close()
        backend.gate.set()
    assert adapter.to("/api/v1/cancel_future") == []
