"""HTTP/1.1 keep-alive server for the stub, on asyncio protocols with hand-written parsing.

One event loop thread serves thousands of connections (the official SDK opens hundreds when
thousands of samples are in flight) with no per-connection thread and no HTTP library.
"""

from __future__ import annotations

import asyncio
import collections
import logging

from benchmarks.stub.protocol import Hold, Reply, StubState

log = logging.getLogger(__name__)

REASONS = {
    200: "OK",
    400: "Bad Request",
    404: "Not Found",
    408: "Request Timeout",
    411: "Length Required",
    413: "Payload Too Large",
}
MAX_HEAD = 64 * 1024
MAX_BODY = 256 * 1024 * 1024


def encode_reply(reply: Reply, *, close: bool) -> bytes:
    """Status line, the three headers a client needs, and the body."""
    head = (
        f"HTTP/1.1 {reply.status} {REASONS.get(reply.status, 'Status')}\r\n"
        f"Content-Type: {reply.content_type}\r\nContent-Length: {len(reply.body)}\r\n"
        f"{'Connection: close' if close else 'Connection: keep-alive'}\r\n\r\n"
    )
    return head.encode() + reply.body


# The request headers the protocol model reads.
READ_HEADERS = frozenset({"content-type", "content-encoding", "accept"})


class _Request:
    __slots__ = ("body", "close", "headers", "method", "path", "size")

    def __init__(
        self, method: str, path: str, body: bytes, close: bool, size: int, headers: dict[str, str]
    ) -> None:
        self.method, self.path, self.body, self.close, self.size = method, path, body, close, size
        self.headers = headers


class StubConnection(asyncio.Protocol):
    """One client connection: parses requests in order and answers them one at a time."""

    def __init__(self, state: StubState) -> None:
        self._state = state
        self._buf = bytearray()
        self._queue: collections.deque[_Request] = collections.deque()
        self._busy = False
        self._transport: asyncio.Transport | None = None
        self._timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def connection_lost(self, exc: Exception | None) -> None:
        self._transport = None
        if self._timer is not None:
            self._timer.cancel()

    def data_received(self, data: bytes) -> None:
        self._buf += data
        while True:
            end = self._buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self._buf) > MAX_HEAD:
                    self._fail(Reply(413, b'{"detail":"header too large"}'))
                return
            head = bytes(self._buf[:end]).decode("latin-1")
            lines = head.split("\r\n")
            parts = lines[0].split(" ")
            if len(parts) != 3:
                self._fail(Reply(400, b'{"detail":"bad request line"}'))
                return
            length, close = 0, parts[2] == "HTTP/1.0"
            headers: dict[str, str] = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                name = name.strip().lower()
                if name in READ_HEADERS:
                    headers[name] = value.strip()
                elif name == "content-length":
                    length = int(value)
                elif name == "connection":
                    close = value.strip().lower() == "close"
                elif name == "transfer-encoding":
                    self._fail(Reply(411, b'{"detail":"send Content-Length"}'))
                    return
            if length > MAX_BODY:
                self._fail(Reply(413, b'{"detail":"body too large"}'))
                return
            total = end + 4 + length
            if len(self._buf) < total:
                return
            body = bytes(self._buf[end + 4 : total])
            del self._buf[:total]
            self._queue.append(_Request(parts[0], parts[1], body, close, total, headers))
            self._drain()

    def _drain(self) -> None:
        while self._queue and not self._busy and self._transport is not None:
            request = self._queue.popleft()
            route = request.path.split("?", 1)[0]
            self._state.bytes_in[route] += request.size
            outcome = self._state.handle(
                request.method, request.path, request.body, request.headers
            )
            if isinstance(outcome, Hold):
                self._busy = True
                self._hold(outcome, request, route)
                return
            self._send(outcome, request, route)

    def _hold(self, hold: Hold, request: _Request, route: str) -> None:
        answered = False

        def answer(reply: Reply) -> None:
            nonlocal answered
            if answered:
                return
            answered = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._busy = False
            self._send(reply, request, route)
            self._drain()

        hold.waiters.append(lambda: answer(hold.respond()))
        loop = asyncio.get_running_loop()
        bound = self._state.config.long_poll_seconds if hold.seconds is None else hold.seconds
        self._timer = loop.call_later(bound, lambda: answer(hold.on_timeout()))

    def _send(self, reply: Reply, request: _Request, route: str) -> None:
        if self._transport is None:
            return
        data = encode_reply(reply, close=request.close)
        self._state.bytes_out[route] += len(data)
        self._transport.write(data)
        if request.close:
            self._transport.close()

    def _fail(self, reply: Reply) -> None:
        if self._transport is not None:
            self._transport.write(encode_reply(reply, close=True))
            self._transport.close()
        self._buf.clear()


async def start_stub(host: str = "127.0.0.1", port: int = 0) -> tuple[asyncio.Server, StubState]:
    """Listen on host:port (0 picks a free port) in the running loop; returns server and state."""
    loop = asyncio.get_running_loop()
    state = StubState(schedule=loop.call_later)
    server = await loop.create_server(
        lambda: StubConnection(state), host, port, backlog=4096, reuse_address=True
    )
    return server, state
