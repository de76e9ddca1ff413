"""HTTP/1.1 transport of the local server on the standard library (threads, keep-alive, loopback).

This layer reads requests, enforces the body size limit and the optional API key, injects
configured faults, hands the request to the router and writes its response. Bodies are
`tinker.types` models (or the documented plain dicts of server.responses) encoded by
`tinker._wire`; errors become FastAPI-style `{"detail": ...}` bodies. Nothing here knows the
endpoints.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import socket
import threading
import time
import urllib.parse
from collections.abc import Callable, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
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

logger = logging.getLogger(__name__)

API_KEY_HEADER = "X-API-Key"


@attrs.frozen
class Request:
    """One parsed HTTP request: method, percent-decoded path, query, lower-cased headers, body."""

    method: str
    path: str
    query: Mapping[str, str]
    headers: Mapping[str, str]
    body: bytes
    base_url: str

    def json(self) -> Any:
        """The body parsed as JSON; an empty body is an empty object (body-less POSTs)."""
        if not self.body.strip():
            return {}
        try:
            return _wire.loads(self.body)
        except ValueError as exc:  # bad UTF-8 or bad JSON
            raise BadRequest(f"The request body is not valid JSON: {exc}") from exc


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
    """`{"detail": ...}` with the error's status (and Allow for 405)."""
    headers: tuple[tuple[str, str], ...] = ()
    if isinstance(error, MethodNotAllowed) and error.allowed:
        headers = (("Allow", ", ".join(error.allowed)),)
    return json_response(error.status, responses.error_detail(error.detail), headers)


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


@attrs.frozen
class ServerOptions:
    """Transport settings: API key (None disables the check), fault injection, size limit."""

    api_key: str | None = attrs.field(default=None, repr=False)
    faults: Faults | None = None
    max_body_bytes: int = settings.MAX_BODY_BYTES
    idle_connection_seconds: float = settings.IDLE_CONNECTION_SECONDS


class LocalHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server that tracks its open connections so close() ends them all."""

    daemon_threads = True
    request_queue_size = settings.LISTEN_BACKLOG

    def __init__(self, address: tuple[str, int], router: Router, options: ServerOptions) -> None:
        self.router = router
        self.options = options
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()
        handler = type("Handler", (_Handler,), {"timeout": options.idle_connection_seconds})
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        shown = host if isinstance(host, str) else host.decode()
        if ":" in shown:
            shown = f"[{shown}]"
        return f"http://{shown}:{port}"

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """Shut down every open client connection (keep-alive sockets and long-polls)."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: LocalHTTPServer
    server_version = "tinker-local"
    # One buffered write per response and no Nagle delay: headers and body leave together.
    disable_nagle_algorithm = True
    wbufsize = 64 * 1024

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def do_DELETE(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def do_PATCH(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        logger.debug("%s: " + format, self.address_string(), *args)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """Per-request logging is done in _handle (with the duration)."""

    def _handle(self) -> None:
        started = time.monotonic()
        split = urllib.parse.urlsplit(self.path)
        path = urllib.parse.unquote(split.path)
        query = {key: values[-1] for key, values in urllib.parse.parse_qs(split.query).items()}
        fault = NO_FAULT
        try:
            body = self._read_body()
            endpoint = self.server.router.resolve(self.command, path)
            if not endpoint.public:
                self._check_api_key()
            if self.server.options.faults is not None:
                fault = self.server.options.faults.decide(endpoint.family, endpoint.name)
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop_before:
                self._drop(path)
                return
            host = self.headers.get("Host")
            base_url = f"http://{host}" if host else self.server.url
            headers = {name.lower(): value for name, value in self.headers.items()}
            request = Request(self.command, path, query, headers, body, base_url)
            response = (
                _injected(fault, body) if fault.status is not None else endpoint.handler(request)
            )
        except HTTPError as exc:
            response = error_response(exc)
        except Exception as exc:
            logger.exception("unhandled error in %s %s", self.command, path)
            detail = responses.error_detail(f"Internal server error: {exc}")
            response = json_response(500, detail)
        if fault.drop_after:
            self._drop(path)
            return
        self._write(response)
        logger.debug(
            "%s %s -> %d (%.1f ms)",
            self.command,
            path,
            response.status,
            (time.monotonic() - started) * 1000,
        )

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True
            raise LengthRequired("Chunked request bodies are not accepted; send Content-Length.")
        raw_length = self.headers.get("Content-Length", "0") or "0"
        try:
            length = int(raw_length)
        except ValueError as exc:
            self.close_connection = True
            raise BadRequest(f"Invalid Content-Length {raw_length!r}.") from exc
        if length < 0:
            self.close_connection = True
            raise BadRequest(f"Invalid Content-Length {raw_length!r}.")
        limit = self.server.options.max_body_bytes
        if length > limit:
            self.close_connection = True
            raise PayloadTooLarge(f"The request body ({length} bytes) exceeds {limit} bytes.")
        return self.rfile.read(length) if length else b""

    def _check_api_key(self) -> None:
        expected = self.server.options.api_key
        if expected is None:
            return
        given = self.headers.get(API_KEY_HEADER)
        if given is None or not hmac.compare_digest(given.encode(), expected.encode()):
            raise Unauthorized("Invalid or missing API key (X-API-Key header).")

    def _write(self, response: Response) -> None:
        try:
            self.send_response(response.status)
            self.send_header("Content-Type", response.content_type)
            self.send_header("Content-Length", str(len(response.body)))
            for name, value in response.headers:
                self.send_header(name, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
            self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True

    def _drop(self, path: str) -> None:
        logger.debug("%s %s -> dropped (fault injection)", self.command, path)
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)


def _injected(fault: FaultDecision, body: bytes) -> Response:
    """The answer of an injected fault: 408 "still pending", 429 or 503."""
    if fault.status == 408:
        try:
            request_id = _wire.loads(body).get("request_id")
        except (ValueError, AttributeError):
            request_id = None
        if isinstance(request_id, str):
            return json_response(408, responses.try_again(request_id))
        return json_response(408, responses.error_detail("Request timeout (injected fault)."))
    if fault.status == 429:
        return json_response(429, responses.error_detail("Too many requests (injected fault)."))
    detail = responses.error_detail("Service unavailable (injected fault).")
    return json_response(fault.status or 503, detail)
