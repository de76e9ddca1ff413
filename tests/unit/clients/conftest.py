"""A scripted fake Tinker service on a loopback HTTP server, and clients connected to it.

The transport talks real HTTP/1.1 (it drives urllib3 pools directly, below what `responses`
patches), so the fake is a small threaded http.server on 127.0.0.1.
"""

from __future__ import annotations

import http.server
import itertools
import json
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest

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

    def __init__(self) -> None:
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
        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        self.base_url = f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()

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

    def handle(
        self, method: str, target: str, headers: dict[str, str], raw: bytes
    ) -> tuple[int, dict[str, str], str]:
        path, _, query = target.partition("?")
        body = json.loads(raw) if raw else None
        params = dict(urllib.parse.parse_qsl(query))
        with self._lock:
            self.calls.append(Call(method, path, body, headers, params))
        if path == "/api/v1/retrieve_future":
            return self._retrieve(body["request_id"])
        handler = self._direct.get((method, path))
        if handler is not None:
            return self._answer(handler(body))
        future_handler = self._futures.get(path)
        if future_handler is not None and method == "POST":
            request_id = f"R{next(self._ids)}"
            answer = future_handler(body)
            with self._lock:
                self._pending[request_id] = list(answer) if isinstance(answer, list) else [answer]
            return self._answer({"request_id": request_id})
        return 404, {}, json.dumps({"detail": f"no fake for {method} {path}"})

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


def _handler_for(fake: FakeService) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            status, headers, text = fake.handle(self.command, self.path, dict(self.headers), raw)
            data = text.encode("utf-8")
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_DELETE = do_PUT = _serve

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@pytest.fixture
def fake() -> Iterator[FakeService]:
    service = FakeService()
    yield service
    service.close()


@pytest.fixture
def service(fake: FakeService, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    from tinker.service_client import ServiceClient

    for name in ("TINKER_API_KEY", "TINKER_BASE_URL", "TINKER_TAGS", "TINKER_LOG"):
        monkeypatch.delenv(name, raising=False)
    client = ServiceClient(api_key=API_KEY, base_url=fake.base_url, telemetry=False)
    yield client
    client.close()


@pytest.fixture
def trainer(service: Any) -> Any:
    return service.create_lora_training_client("base/model", rank=8)
