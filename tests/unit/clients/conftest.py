"""A scripted fake Tinker service on `responses`, and clients connected to it."""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
import responses

BASE_URL = "http://tinker.test"
API_KEY = "tml-secret-key-for-tests"
SESSION_ID = "S"

Handler = Callable[[Any], Any]


@attrs.define
class Call:
    """One request the fake received."""

    method: str
    path: str
    body: Any
    headers: dict[str, str]
    params: dict[str, str]


@attrs.define
class Reply:
    """A scripted HTTP answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.field(factory=dict)


class FakeService:
    """Answers the Tinker endpoints from scripted handlers and records every request.

    `future(path, handler)`: the endpoint answers {request_id}; polling that id returns
    handler(body) (a dict, or a Reply / list of Replies to script several polls).
    `direct(method, path, handler)`: the endpoint answers handler(body) at once.
    """

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._ids = itertools.count()
        self._direct: dict[tuple[str, str], Handler] = {}
        self._futures: dict[str, Handler] = {}
        self._pending: dict[str, list[Reply]] = {}
        self.direct("POST", "/api/v1/create_session", lambda _b: {"session_id": SESSION_ID})
        self.direct("POST", "/api/v1/session_heartbeat", lambda _b: {})
        self.direct("POST", "/api/v1/telemetry", lambda _b: {"status": "accepted"})
        self.future("/api/v1/create_model", lambda b: {"model_id": f"M{b['model_seq_id']}"})
        mock.add_callback(
            responses.GET, re.compile(re.escape(BASE_URL) + r"/.*"), callback=self._handle
        )
        for method in (responses.POST, responses.DELETE, responses.PUT):
            mock.add_callback(
                method, re.compile(re.escape(BASE_URL) + r"/.*"), callback=self._handle
            )

    def direct(self, method: str, path: str, handler: Handler) -> None:
        self._direct[(method, path)] = handler

    def future(self, path: str, handler: Handler) -> None:
        self._futures[path] = handler

    def script(self, request_id: str, replies: list[Reply]) -> None:
        """What polling `request_id` answers (the last reply repeats)."""
        with self._lock:
            self._pending[request_id] = list(replies)

    def requests_to(self, path: str) -> list[Call]:
        return [call for call in self.calls if call.path == path]

    def bodies(self, path: str) -> list[Any]:
        return [call.body for call in self.requests_to(path)]

    @property
    def api_calls(self) -> list[Call]:
        """Every call except session plumbing (create_session, heartbeat, telemetry, polls)."""
        plumbing = {
            "/api/v1/create_session",
            "/api/v1/session_heartbeat",
            "/api/v1/telemetry",
            "/api/v1/retrieve_future",
        }
        return [call for call in self.calls if call.path not in plumbing]

    def _handle(self, request: Any) -> tuple[int, dict[str, str], str]:
        path, _, query = request.path_url.partition("?")
        body = json.loads(request.body) if request.body else None
        params = dict(pair.split("=", 1) for pair in query.split("&") if pair)
        with self._lock:
            self.calls.append(Call(request.method, path, body, dict(request.headers), params))
        if path == "/api/v1/retrieve_future":
            return self._retrieve(body["request_id"])
        handler = self._direct.get((request.method, path))
        if handler is None:
            for (method, pattern), candidate in self._direct.items():
                if method == request.method and re.fullmatch(pattern, path):
                    handler = candidate
                    break
        if handler is not None:
            return self._answer(handler(body))
        future_handler = self._futures.get(path)
        if future_handler is not None and request.method == "POST":
            request_id = f"R{next(self._ids)}"
            answer = future_handler(body)
            with self._lock:
                self._pending[request_id] = list(answer) if isinstance(answer, list) else [answer]
            return self._answer({"request_id": request_id})
        return 404, {}, json.dumps({"detail": f"no fake for {request.method} {path}"})

    def _retrieve(self, request_id: str) -> tuple[int, dict[str, str], str]:
        with self._lock:
            queue = self._pending[request_id]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return self._answer(answer)

    @staticmethod
    def _answer(answer: Any) -> tuple[int, dict[str, str], str]:
        reply = answer if isinstance(answer, Reply) else Reply(body=answer)
        text = "" if reply.body is None else json.dumps(reply.body)
        return reply.status, {"Content-Type": "application/json", **reply.headers}, text


@pytest.fixture
def fake() -> Iterator[FakeService]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield FakeService(mock)


@pytest.fixture
def service(fake: FakeService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tinker.service_client import ServiceClient

    for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_TAGS", "TINKER_LOG"):
        monkeypatch.delenv(name, raising=False)
    client = ServiceClient(api_key=API_KEY, base_url=BASE_URL, telemetry=False)
    yield client
    client.close()


@pytest.fixture
def trainer(service: Any) -> Any:
    return service.create_lora_training_client("base/model", rank=8)
