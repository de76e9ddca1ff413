"""A small scriptable Tinker-like HTTP service on 127.0.0.1 for the core tests.

Records every request; answers create_session, session_heartbeat and telemetry; any other POST
under /api/v1/ is a "submit" that returns a request_id whose result is the echoed body (at once
or when the test completes it); retrieve_future long-polls up to `hold` seconds and answers 408
while pending. Tests push scripted replies per path to inject errors.
"""

from __future__ import annotations

import collections
import http.server
import itertools
import json
import threading
import time
from collections.abc import Callable
from typing import Any

import attrs
from requests.structures import CaseInsensitiveDict


@attrs.frozen
class Recorded:
    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    body: Any
    query: str = ""


@attrs.frozen
class Scripted:
    status: int
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # wait this long before answering
    raw: bytes | None = None  # send these bytes as the body instead of JSON


# Signature of the `make_runtime` fixture: keyword config overrides -> a started Runtime.
RuntimeFactory = Callable[..., Any]


class FakeTime:
    """A manual clock whose sleep() records the pause and moves time forward."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class FakeService:
    """The service state shared by the handler threads."""

    def __init__(self, *, hold: float = 0.2, auto_complete: bool = True) -> None:
        self.hold = hold
        self.auto_complete = auto_complete
        self.cond = threading.Condition()
        self.requests: list[Recorded] = []
        self.script: dict[str, collections.deque[Scripted]] = collections.defaultdict(
            collections.deque
        )
        self.results: dict[str, tuple[int, Any]] = {}
        self.ids = itertools.count()
        self.session_id = "sess-1"
        # Optional hook: (path, body) -> a reply that replaces the normal answer, or None.
        self.intercept: Callable[[str, Any], Scripted | None] | None = None
        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.service = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def __enter__(self) -> FakeService:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def push(self, path: str, *replies: Scripted) -> None:
        """Answer the next requests to `path` with `replies`, in order."""
        with self.cond:
            self.script[path].extend(replies)

    def complete(self, request_id: str, body: Any, status: int = 200) -> None:
        """Make a pending future finish with `body`."""
        self.complete_many({request_id: body}, status)

    def complete_many(self, bodies: dict[str, Any], status: int = 200) -> None:
        """Make several pending futures finish at once."""
        with self.cond:
            for request_id, body in bodies.items():
                self.results[request_id] = (status, body)
            self.cond.notify_all()

    def wait_seen(self, path: str, count: int, timeout: float = 10.0) -> list[Recorded]:
        """The requests to `path` once at least `count` have arrived (or `timeout` passed)."""
        with self.cond:
            self.cond.wait_for(
                lambda: sum(r.path == path for r in self.requests) >= count, timeout=timeout
            )
        return self.seen(path)

    def seen(self, path: str) -> list[Recorded]:
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def handle(
        self, method: str, target: str, headers: CaseInsensitiveDict[str], raw: bytes
    ) -> Scripted:
        body = json.loads(raw) if raw else None
        path, _, query = target.partition("?")
        with self.cond:
            self.requests.append(Recorded(method, path, headers, body, query))
            self.cond.notify_all()
            if self.script[path]:
                return self.script[path].popleft()
        if self.intercept is not None:
            forced = self.intercept(path, body)
            if forced is not None:
                return forced
        if path == "/api/v1/create_session":
            return Scripted(200, {"session_id": self.session_id, "type": "create_session"})
        if path == "/api/v1/session_heartbeat":
            return Scripted(200, {"type": "session_heartbeat"})
        if path == "/api/v1/telemetry":
            return Scripted(200, {"status": "accepted"})
        if path == "/api/v1/retrieve_future":
            return self._retrieve(body["request_id"])
        if method == "POST":
            request_id = f"req-{next(self.ids)}"
            if self.auto_complete:
                self.complete(request_id, {"echo": body})
            return Scripted(200, {"request_id": request_id, "model_id": None})
        return Scripted(200, {"method": method, "path": path})

    def _retrieve(self, request_id: str) -> Scripted:
        with self.cond:
            self.cond.wait_for(lambda: request_id in self.results, timeout=self.hold)
            if request_id not in self.results:
                return Scripted(408, {"type": "try_again", "request_id": request_id})
            status, body = self.results[request_id]
            return Scripted(status, body)


class _QuietServer(http.server.ThreadingHTTPServer):
    """Clients that give up (timeouts, dropped connections) are expected: no tracebacks."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        service: FakeService = self.server.service  # type: ignore[attr-defined]
        headers = CaseInsensitiveDict(self.headers.items())
        reply = service.handle(self.command, self.path, headers, raw)
        if reply.delay:
            time.sleep(reply.delay)
        if reply.drop:
            self.close_connection = True
            self.connection.close()
            return
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        if reply.raw is not None:
            data = reply.raw
        self.send_response(reply.status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for name, value in reply.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST = do_DELETE = _serve
