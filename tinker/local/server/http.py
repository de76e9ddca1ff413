"""HTTP/1.1 transport of the local server on the standard library (threads, keep-alive).

This layer bounds what a client can hold: at most `max_connections` connections are served
at once (one thread each; when all are busy further ones wait in the listen backlog, and an
idle keep-alive connection is closed to make room), a request's headers and body must arrive
within `request_deadline_seconds`, a body is refused by its declared length before it is read,
and the API key is checked before the body is read. It answers HEAD and OPTIONS, refuses
ambiguous framing, injects configured faults and hands each request to the router. The
credential is the API key or, with JWT auth, a token the server issued (an invalid or expired
token gets 401 with `WWW-Authenticate: Bearer error="invalid_token"`, which tells 0.38 clients
to fetch a new one). Every error answer is a JSON body (`{"detail": ...}`) with its length.
Nothing here knows the endpoints.
"""

from __future__ import annotations

import contextlib
import hmac
import io
import logging
import re
import socket
import sys
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Protocol

import attrs

from tinker import _wire
from tinker.local.server import responses, settings
from tinker.local.server.faults import NO_FAULT, FaultDecision, Faults
from tinker.local.server.http_errors import (
    BadRequest,
    HTTPError,
    LengthRequired,
    MethodNotAllowed,
    PayloadTooLarge,
    Unauthorized,
)
from tinker.local.server.tokens import InvalidToken, TokenAuthority, looks_like_jwt

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
_CONTENT_LENGTH = re.compile(r"[0-9]{1,20}")
_READ_CHUNK = 64 * 1024


@attrs.frozen
class Request:
    """One parsed HTTP request: method, percent-decoded path, query, lower-cased headers, body,
    and the server's own URL (for links it hands out)."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    base_url: str

    def from_038_client(self) -> bool:
        """Whether the request shows it comes from a client of the 0.38 protocol: a protobuf
        or compressed body, an x-sdk-version header, or a JSON body with keys only 0.38 sends
        (the `type` of every request model, `allow_metadata_only` of polls)."""
        if "x-sdk-version" in self.headers or "content-encoding" in self.headers:
            return True
        if "protobuf" in self.headers.get("content-type", ""):
            return True
        if not self.body:
            return False
        try:
            data = _wire.loads(self.body)
        except (ValueError, RecursionError):
            return False
        return isinstance(data, dict) and ("type" in data or "allow_metadata_only" in data)


@attrs.frozen
class Response:
    """A status, a body and extra headers."""

    status: int
    body: bytes = b""
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()


def json_response(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Response:
    """A JSON response: a `tinker.types` model (or a documented plain dict) as _wire encodes it."""
    return Response(status, _wire.dumps(body), headers=headers)


def error_response(error: HTTPError) -> Response:
    """`{"detail": ...}` with the error's status and headers (Allow for 405)."""
    headers = error.headers
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers = (*headers, ("Allow", ", ".join(error.allowed)))
    detail = error.detail
    if isinstance(detail, str):  # never let an unencodable detail turn an answer into a 500
        detail = detail.encode("utf-8", "backslashreplace").decode("utf-8")
    return json_response(error.status, responses.error_detail(detail), headers)


@attrs.frozen
class Endpoint:
    """A matched route: its name, endpoint family (for faults), auth need and handler."""

    name: str
    family: str
    public: bool
    handler: Callable[[Request], Response]


class Router(Protocol):
    """What the transport serves: resolves a method and path to an endpoint."""

    def resolve(self, method: str, path: str) -> Endpoint:
        """The endpoint for this request; raises NotFound or MethodNotAllowed."""
        ...


def _at_least(low: float) -> Callable[[Any, attrs.Attribute[Any], float], None]:
    def check(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
        if not value >= low:
            raise ValueError(f"{attribute.name} must be at least {low}, got {value!r}")

    return check


def _positive(_: Any, attribute: attrs.Attribute[Any], value: float) -> None:
    if not value > 0:
        raise ValueError(f"{attribute.name} must be positive, got {value!r}")


@attrs.frozen
class ServerOptions:
    """Transport settings: API key (None disables the check), the token authority of JWT auth
    (tokens are accepted only when there is an API key), faults, limits, advertised URL."""

    api_key: str | None = attrs.field(default=None, repr=False)
    tokens: TokenAuthority | None = None
    faults: Faults | None = None
    max_body_bytes: int = attrs.field(default=settings.MAX_BODY_BYTES, validator=_at_least(0))
    idle_connection_seconds: float = attrs.field(
        default=settings.IDLE_CONNECTION_SECONDS, validator=_positive
    )
    request_deadline_seconds: float = attrs.field(
        default=settings.REQUEST_DEADLINE_SECONDS, validator=_positive
    )
    max_connections: int = attrs.field(default=settings.MAX_CONNECTIONS, validator=_at_least(1))
    linger_seconds: float = attrs.field(default=settings.LINGER_SECONDS, validator=_at_least(0))
    #: The URL links (archive downloads) are built from; None: the address the server is bound to.
    public_url: str | None = None


class _Connection:
    """An open client connection; idle while it waits for the first byte of a request."""

    def __init__(self, sock: socket.socket) -> None:
        self.socket = sock
        self.idle_since: float | None = time.monotonic()
        self.evicted = False


class LocalHTTPServer(HTTPServer):
    """An HTTP server with one thread per open connection and a cap on open connections."""

    request_queue_size = settings.LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], router: Router, options: ServerOptions) -> None:
        self.router = router
        self.options = options
        self._slots = threading.Condition()
        self._open: dict[socket.socket, _Connection] = {}
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)

    @property
    def url(self) -> str:
        """The address the server listens on, as a URL."""
        host, port = self.server_address[:2]
        shown = host if isinstance(host, str) else host.decode()
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}"

    @property
    def public_url(self) -> str:
        """The URL of links the server hands out (never taken from a request's Host header)."""
        return (self.options.public_url or self.url).rstrip("/")

    def get_request(self) -> tuple[socket.socket, Any]:
        """Accept a connection once there is room: at the cap, close the longest-idle connection
        and wait for its thread to end; while every connection is busy, new ones wait in the
        listen backlog (without a thread)."""
        with self._slots:
            if not self._has_room_locked():
                self._slots.wait(0.1)
                if not self._has_room_locked():
                    raise OSError("no room for a connection yet")  # serve_forever tries again
        return self.socket.accept()

    def _has_room_locked(self) -> bool:
        if len(self._open) < self.options.max_connections:
            return True
        if any(connection.evicted for connection in self._open.values()):
            return False  # room is being made
        idle = [c for c in self._open.values() if c.idle_since is not None]
        if idle:
            victim = min(idle, key=lambda connection: connection.idle_since or 0.0)
            victim.evicted = True
            logger.debug("closing an idle connection to make room (%d open)", len(self._open))
            with contextlib.suppress(OSError):
                victim.socket.shutdown(socket.SHUT_RDWR)
        return False

    def process_request(self, request: Any, client_address: Any) -> None:
        """Serve the connection on a thread of its own."""
        with self._slots:
            self._open[request] = _Connection(request)
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"tinker-local-connection-{self.server_address[1]}",
            daemon=True,
        )
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)

    def mark(self, sock: socket.socket, *, idle: bool) -> None:
        """Record whether a connection is between requests (and may be closed for room)."""
        with self._slots:
            record = self._open.get(sock)
            if record is not None:
                record.idle_since = time.monotonic() if idle else None

    def shutdown_request(self, request: Any) -> None:
        with self._slots:
            self._open.pop(request, None)
            self._slots.notify()
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """One log line when a client goes away; a traceback only for a fault of the server."""
        error = sys.exc_info()[1]
        if isinstance(error, OSError):
            logger.info("connection from %s ended: %s", _peer(client_address), _describe(error))
        else:
            logger.exception("unhandled error on the connection from %s", _peer(client_address))

    def close_connections(self) -> None:
        """Shut down every open client connection (keep-alive sockets and long-polls)."""
        with self._slots:
            connections = list(self._open)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _RequestReader(io.RawIOBase):
    """Socket reads bounded twice: `idle` seconds per read, and a total deadline for one request
    counted from its first byte (so a client trickling bytes is cut off too)."""

    def __init__(self, server: LocalHTTPServer, sock: socket.socket) -> None:
        super().__init__()
        self._server = server
        self._socket = sock
        self._deadline: float | None = None

    def readable(self) -> bool:
        return True

    def begin_request(self) -> None:
        """The connection now waits for a new request: idle until its first byte arrives."""
        self._deadline = None
        self._server.mark(self._socket, idle=True)

    def readinto(self, buffer: Any) -> int:
        options = self._server.options
        idle = options.idle_connection_seconds
        remaining = idle if self._deadline is None else self._deadline - time.monotonic()
        late = TimeoutError(
            f"the request did not arrive within {options.request_deadline_seconds:g} s"
        )
        if remaining <= 0:
            raise late
        self._socket.settimeout(min(idle, remaining))
        try:
            count = self._socket.recv_into(buffer)
        except TimeoutError:
            stalled = TimeoutError(f"nothing arrived for {idle:g} s")
            raise (late if remaining < idle else stalled) from None
        if count and self._deadline is None:
            self._deadline = time.monotonic() + options.request_deadline_seconds
            self._server.mark(self._socket, idle=False)
        return count


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHTTPServer
    server_version = "tinker-local"
    # One buffered write per response and no Nagle delay: headers and body leave together.
    wbufsize = 64 * 1024

    def setup(self) -> None:
        self.connection = self.request
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, True)
        self._reader = _RequestReader(self.server, self.connection)
        self.rfile = io.BufferedReader(self._reader, _READ_CHUNK)
        self.wfile = self.connection.makefile("wb", self.wbufsize)
        self._expect_continue = False
        self._unread: int | None = 0

    def handle_one_request(self) -> None:
        self._reader.begin_request()
        self._expect_continue = False
        self._unread = 0
        super().handle_one_request()

    def handle_expect_100(self) -> bool:
        """Send 100 Continue only once the request is routed and authorised (see _handle)."""
        self._expect_continue = True
        return True

    def do_GET(self) -> None:
        self._handle()

    def do_HEAD(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def do_OPTIONS(self) -> None:
        self._handle()

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while parsing the request line and headers, as JSON like every other."""
        detail = message or self.responses.get(code, ("Error",))[0]
        logger.debug("%s: %d %s", _peer(self.client_address), code, detail)
        self.close_connection = True
        self._write(json_response(code, responses.error_detail(detail)))

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, _peer(self.client_address), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Per-request logging is done in _handle (with the duration)."""

    def _handle(self) -> None:
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(split.query).items()}
        method = "GET" if self.command == "HEAD" else self.command
        fault = NO_FAULT
        try:
            length = self._content_length()
            self._unread = length
            if method == "OPTIONS":
                response = self._options(split.path, path)
            else:
                endpoint = self.server.router.resolve(method, path)
                if not endpoint.public:
                    self._check_credential()
                body = self._read_body(length)
                headers = {name.lower(): value for name, value in self.headers.items()}
                request = Request(method, path, query, headers, body, self.server.public_url)
                faults = self.server.options.faults
                if faults is not None:
                    fault = faults.decide(endpoint.family, endpoint.name, request.from_038_client)
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop_before:
                    self._drop(path)
                    return
                response = (
                    _injected(fault, body)
                    if fault.status is not None
                    else endpoint.handler(request)
                )
        except HTTPError as exc:
            response = error_response(exc)
        except TimeoutError as exc:
            logger.info("%s: %s %s: %s", _peer(self.client_address), self.command, path, exc)
            response = json_response(408, responses.error_detail(f"Request timeout: {exc}."))
            self.close_connection = True
            self._unread = 0
        except ConnectionError as exc:
            logger.info(
                "%s: %s %s: the client went away: %s",
                _peer(self.client_address),
                self.command,
                path,
                _describe(exc),
            )
            self.close_connection = True
            return
        except Exception as exc:
            logger.exception("unhandled error in %s %s", self.command, path)
            detail = responses.error_detail(f"Internal server error: {exc}")
            response = json_response(500, detail)
        if fault.drop_after:
            self._drop(path)
            return
        if self._unread != 0:
            self.close_connection = True  # the body was not read: the framing is lost
        self._write(response)
        if self._unread != 0:
            self._linger()
        logger.debug(
            "%s %s -> %d (%.1f ms)",
            self.command,
            path,
            response.status,
            (time.monotonic() - started) * 1000,
        )

    def _content_length(self) -> int:
        """The declared body length; ambiguous or unsupported framing is refused."""
        if self.headers.get("Transfer-Encoding") is not None:
            self._unread = None
            if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
                raise LengthRequired(
                    "Chunked request bodies are not accepted; send Content-Length."
                )
            raise BadRequest("Transfer-Encoding is not accepted; send Content-Length.")
        values = self.headers.get_all("Content-Length") or []
        if len(values) > 1:
            self._unread = None
            raise BadRequest(f"Conflicting Content-Length headers: {values!r}.")
        raw = values[0].strip() if values else "0"
        if not _CONTENT_LENGTH.fullmatch(raw):
            self._unread = None
            raise BadRequest(f"Invalid Content-Length {raw[:40]!r}.")
        return int(raw)

    def _read_body(self, length: int) -> bytes:
        limit = self.server.options.max_body_bytes
        if length > limit:
            raise PayloadTooLarge(f"The request body ({length} bytes) exceeds {limit} bytes.")
        if not length:
            return b""
        if self._expect_continue:
            self.send_response_only(100)
            self.end_headers()
            self.wfile.flush()
        body = self.rfile.read(length)
        if len(body) < length:
            self._unread = None
            raise BadRequest(f"The request body ended after {len(body)} of {length} bytes.")
        self._unread = 0
        return body

    def _check_credential(self) -> None:
        """The API key, or with JWT auth a valid token of this server; else 401."""
        options = self.server.options
        expected = options.api_key
        if expected is None:
            return
        given = self.headers.get(API_KEY_HEADER)
        if given is not None and hmac.compare_digest(given.encode(), expected.encode()):
            return
        if given is not None and options.tokens is not None and looks_like_jwt(given):
            try:
                options.tokens.verify(given)
            except InvalidToken as exc:
                challenge = f'Bearer error="invalid_token", error_description="{exc}"'
                raise Unauthorized(
                    f"Invalid token: {exc}; fetch a new one from /api/v1/auth/token.",
                    headers=(("WWW-Authenticate", challenge),),
                ) from None
            return
        raise Unauthorized("Invalid or missing API key (X-API-Key header).")

    def _options(self, raw_path: str, path: str) -> Response:
        """OPTIONS: 204 with the methods a path takes (every method for `*`)."""
        if raw_path == "*":
            allowed: tuple[str, ...] = METHODS
        else:
            try:
                self.server.router.resolve("OPTIONS", path)
                allowed = ("OPTIONS",)
            except MethodNotAllowed as exc:  # NotFound propagates: 404
                head = ("HEAD",) if "GET" in exc.allowed else ()
                allowed = (*exc.allowed, *head, "OPTIONS")
        return Response(204, headers=(("Allow", ", ".join(allowed)),))

    def _write(self, response: Response) -> None:
        try:
            self.connection.settimeout(self.server.options.idle_connection_seconds)
            self.send_response(response.status)
            if response.status != 204:
                self.send_header("Content-Type", response.content_type)
                self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(response.body)
            self.wfile.flush()
        except OSError as exc:
            logger.info(
                "%s: the answer to %s %s was not delivered: %s",
                _peer(self.client_address),
                self.command,
                self.path[:200],
                _describe(exc),
            )
            self.close_connection = True

    def _linger(self) -> None:
        """After an early answer, read and drop the unread body for a short while (bounded in
        time and bytes, never held in memory) so the client reads the answer, not a reset."""
        budget = self._unread if self._unread is not None else self.server.options.max_body_bytes
        deadline = time.monotonic() + self.server.options.linger_seconds
        scratch = bytearray(_READ_CHUNK)
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_WR)
            while budget > 0:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self.connection.settimeout(remaining)
                count = self.connection.recv_into(scratch, min(budget, _READ_CHUNK))
                if not count:
                    break
                budget -= count

    def _drop(self, path: str) -> None:
        logger.debug("%s %s -> dropped (fault injection)", self.command, path)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _peer(address: Any) -> str:
    if isinstance(address, tuple) and len(address) >= 2:
        return f"{address[0]}:{address[1]}"
    return str(address)


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"


def _injected(fault: FaultDecision, body: bytes) -> Response:
    """The answer of an injected fault: 408 "still pending", 402, 429 or 503."""
    if fault.status == 408:
        try:
            request_id = _wire.loads(body).get("request_id")
        except (ValueError, AttributeError, RecursionError):
            request_id = None
        if isinstance(request_id, str):
            return json_response(408, responses.try_again(request_id))
        return json_response(408, responses.error_detail("Request timeout (injected fault)."))
    if fault.status == 429:
        return json_response(429, responses.error_detail("Too many requests (injected fault)."))
    if fault.status == 402:
        message = "Payment required: billing is paused (injected fault)."
        return json_response(402, responses.error_detail(message))
    detail = responses.error_detail("Service unavailable (injected fault).")
    return json_response(fault.status or 503, detail)
