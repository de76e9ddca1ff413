"""One scriptable Tinker-like HTTP service on 127.0.0.1, shared by the unit test suites.

The transport talks real HTTP/1.1 (it drives urllib3 pools directly, below what `responses`
patches), so the fake is a small threaded http.server. It records every request and answers:

- create_session, session_heartbeat and telemetry, like the service; `client/config` answers
  404 (a 0.5.1-era service) unless `client_config` is given (a 0.38 service answering it, and
  `dynamic_config` for `client/dynamic_config`);
- `direct(method, path, handler)`: the endpoint answers `handler(body)` at once;
- `future(path, handler)`: the endpoint answers `{request_id}`; polling that id answers
  `handler(body)` (a Reply list scripts several polls, the last one repeating);
- `route(method, pattern, handler)`: paths matching the regex answer `handler(request,
  *groups)` at once (REST resources with ids in their path);
- any other POST is a submit answered `{request_id}` whose result is `{"echo": body}`, at once
  (`auto_complete`) or when the test calls `complete`; any other method answers its method and
  path;
- retrieve_future long-polls up to `hold` seconds and answers 408 while the result is pending;
- `push(path, *replies)` overrides the next answers to `path`; `intercept(path, body)` may
  replace any answer.
"""

from __future__ import annotations

import collections
import http.server
import itertools
import json
import re
import threading
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs
from requests.structures import CaseInsensitiveDict

Handler = Callable[[Any], Any]
# (the request, the groups of the path pattern) -> a body, or a Reply
RouteHandler = Callable[..., Any]

PLUMBING = frozenset(
    {
        "/api/v1/client/config",
        "/api/v1/client/dynamic_config",
        "/api/v1/create_session",
        "/api/v1/session_heartbeat",
        "/api/v1/telemetry",
        "/api/v1/retrieve_future",
    }
)


@attrs.frozen
class Recorded:
    """One request the fake received."""

    method: str
    path: str
    headers: CaseInsensitiveDict[str]
    body: Any
    query: str = ""

    @property
    def params(self) -> dict[str, str]:
        """The query parameters."""
        return dict(urllib.parse.parse_qsl(self.query))


@attrs.frozen
class Reply:
    """A scripted HTTP answer."""

    status: int = 200
    body: Any = None
    headers: dict[str, str] = attrs.Factory(dict)
    drop: bool = False  # close the connection without answering
    delay: float = 0.0  # wait this long before answering
    raw: bytes | None = None  # send these bytes as the body instead of JSON


class FakeTime:
    """A manual clock: `sleep` and `call_later` record the pause and move time forward.

    As a scheduler it runs the callback at once (after moving the clock), so a test sees the
    pauses of timer-driven retries without waiting.
    """

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def call_later(self, delay: float, fn: Callable[[], None], on_drop: Any = None) -> bool:
        if delay > 0:
            self.sleep(delay)
        fn()
        return True


class FakeService:
    """The service state shared by the handler threads."""

    def __init__(
        self,
        *,
        session_id: str = "S",
        hold: float = 0.2,
        auto_complete: bool = True,
        client_config: dict[str, Any] | None = None,
        dynamic_config: dict[str, Any] | None = None,
    ) -> None:
        self.session_id = session_id
        self.client_config = client_config
        self.dynamic_config = dynamic_config
        self.hold = hold
        self.auto_complete = auto_complete
        self.cond = threading.Condition()
        self.requests: list[Recorded] = []
        self.script: dict[str, collections.deque[Reply]] = collections.defaultdict(
            collections.deque
        )
        self.results: dict[str, list[Reply]] = {}
        self.ids = itertools.count()
        self._direct: dict[tuple[str, str], Handler] = {}
        self._futures: dict[str, Handler] = {}
        self._routes: list[tuple[str, re.Pattern[str], RouteHandler]] = []
        # Optional hook: (path, body) -> a reply that replaces the normal answer, or None.
        self.intercept: Callable[[str, Any], Reply | None] | None = None
        self.server = _QuietServer(("127.0.0.1", 0), _Handler)
        self.server.daemon_threads = True
        self.server.service = self  # type: ignore[attr-defined]
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self.thread.start()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> FakeService:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- scripting -----------------------------------------------------------------------------

    def direct(self, method: str, path: str, handler: Handler) -> None:
        """`method path` answers `handler(body)` (a body, or a Reply) at once."""
        self._direct[(method, path)] = handler

    def future(self, path: str, handler: Handler) -> None:
        """POST `path` answers a request id; polling it answers `handler(body)`."""
        self._futures[path] = handler

    def route(self, method: str, pattern: str, handler: RouteHandler) -> None:
        """`method` on a path fully matching `pattern` answers `handler(request, *groups)`."""
        self._routes.append((method, re.compile(pattern), handler))

    def push(self, path: str, *replies: Reply) -> None:
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
                self.results[request_id] = [Reply(status, body)]
            self.cond.notify_all()

    def script_polls(self, request_id: str, replies: list[Reply]) -> None:
        """What polling `request_id` answers (the last reply repeats)."""
        with self.cond:
            self.results[request_id] = list(replies)
            self.cond.notify_all()

    # -- what was sent -------------------------------------------------------------------------

    def seen(self, path: str) -> list[Recorded]:
        """The requests to `path` so far."""
        with self.cond:
            return [r for r in self.requests if r.path == path]

    def bodies(self, path: str) -> list[Any]:
        """The bodies of the requests to `path`."""
        return [r.body for r in self.seen(path)]

    def wait_seen(self, path: str, count: int, timeout: float = 10.0) -> list[Recorded]:
        """The requests to `path` once at least `count` have arrived (or `timeout` passed)."""
        with self.cond:
            self.cond.wait_for(
                lambda: sum(r.path == path for r in self.requests) >= count, timeout=timeout
            )
        return self.seen(path)

    @property
    def api_calls(self) -> list[Recorded]:
        """Every request but session plumbing (create_session, heartbeat, telemetry, polls)."""
        with self.cond:
            return [r for r in self.requests if r.path not in PLUMBING]

    # -- answering -----------------------------------------------------------------------------

    def handle(
        self, method: str, target: str, headers: CaseInsensitiveDict[str], raw: bytes
    ) -> Reply:
        if "protobuf" in headers.get("Content-Type", ""):
            body: Any = raw
        else:
            body = json.loads(raw) if raw else None
        path, _, query = target.partition("?")
        request = Recorded(method, path, headers, body, query)
        with self.cond:
            self.requests.append(request)
            self.cond.notify_all()
            if self.script[path]:
                return self.script[path].popleft()
        if self.intercept is not None:
            forced = self.intercept(path, body)
            if forced is not None:
                return forced
        if path == "/api/v1/retrieve_future":
            return self._retrieve(body["request_id"])
        handler = self._direct.get((method, path))
        if handler is not None:
            return _as_reply(handler(body))
        for route_method, pattern, route_handler in self._routes:
            match = pattern.fullmatch(path)
            if route_method == method and match is not None:
                return _as_reply(route_handler(request, *match.groups()))
        if path == "/api/v1/client/config":
            if self.client_config is None:
                return Reply(404, {"detail": "Not Found"})
            return Reply(200, self.client_config)
        if path == "/api/v1/client/dynamic_config":
            if self.dynamic_config is None:
                return Reply(404, {"detail": "Not Found"})
            return Reply(200, self.dynamic_config)
        if path == "/api/v1/create_session":
            return Reply(200, {"session_id": self.session_id, "type": "create_session"})
        if path == "/api/v1/session_heartbeat":
            return Reply(200, {"type": "session_heartbeat"})
        if path == "/api/v1/telemetry":
            return Reply(200, {"status": "accepted"})
        if method != "POST":
            return Reply(200, {"method": method, "path": path})
        request_id = f"req-{next(self.ids)}"
        future_handler = self._futures.get(path)
        if future_handler is not None:
            answer = future_handler(body)
            self.script_polls(request_id, answer if isinstance(answer, list) else [answer])
        elif self.auto_complete:
            self.complete(request_id, {"echo": body})
        return Reply(200, {"request_id": request_id, "model_id": None})

    def _retrieve(self, request_id: str) -> Reply:
        with self.cond:
            self.cond.wait_for(lambda: request_id in self.results, timeout=self.hold)
            queue = self.results.get(request_id)
            if not queue:
                return Reply(408, {"type": "try_again", "request_id": request_id})
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
        return _as_reply(answer)


def _as_reply(answer: Any) -> Reply:
    return answer if isinstance(answer, Reply) else Reply(200, answer)


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

    do_GET = do_POST = do_DELETE = do_PUT = _serve
