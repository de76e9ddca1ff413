"""Hostile connections to the local server: broken framing, stalled and concurrent clients.

Whatever arrives, the server answers with a 4xx (never a 500) and keeps serving other clients.
(Fuzzed bodies, paths and query strings: test_fuzz_routes.)
"""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator

import pytest

import tinker.local

from .conftest import API_KEY
from .target import Target

IDLE_SECONDS = 2.0


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    server = tinker.local.serve(
        data_dir=tmp_path_factory.mktemp("hostile"),
        api_key=API_KEY,
        long_poll_seconds=0.5,
        idle_connection_seconds=IDLE_SECONDS,
    )
    try:
        yield Target(server)
    finally:
        server.close()


def _raw(target: Target, payload: bytes, *, read_timeout: float = 10.0) -> bytes:
    host, port = target.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=read_timeout) as sock:
        sock.sendall(payload)
        sock.shutdown(socket.SHUT_WR)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


def _request(
    body: bytes,
    *,
    length: int | None = None,
    content_type: str = "application/json",
    extra: str = "",
) -> bytes:
    head = (
        f"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\nX-API-Key: {API_KEY}\r\n"
        f"Content-Type: {content_type}\r\nContent-Length: {len(body) if length is None else length}"
        f"\r\n{extra}\r\n"
    )
    return head.encode() + body


def _status(answer: bytes) -> int:
    """The status of a raw answer. An unparseable request line is taken for HTTP/0.9, whose
    answers have no status line: only the JSON error body, counted as 400."""
    if answer.startswith(b"HTTP/"):
        return int(answer.split(b" ", 2)[1])
    assert "detail" in json.loads(answer), answer[:300]
    return 400


@pytest.mark.parametrize(
    ("name", "payload", "status"),
    [
        ("truncated body", _request(b'{"tags": [', length=200), 400),
        ("truncated json", _request(b'{"tags": ['), 400),
        ("not json", _request(b"\xff\xfe\x00garbage"), 400),
        ("json array", _request(b"[1, 2, 3]"), 4),
        ("negative length", _request(b"{}", length=-5), 400),
        ("bad length", _request(b"{}").replace(b"Content-Length: 2", b"Content-Length: x"), 400),
        ("oversized", _request(b"{}", length=10**12), 413),
        ("chunked", _request(b"{}", extra="Transfer-Encoding: chunked\r\n"), 411),
        (
            "form content type",
            _request(b"a=1&b=2", content_type="application/x-www-form-urlencoded"),
            400,
        ),
        ("text content type", _request(b"hello", content_type="text/plain"), 400),
        ("garbage request line", b"\x00\x01\x02 nonsense\r\n\r\n", 400),
        ("http/0.9", b"GET /api/v1/healthz\r\n", None),
        ("huge header", b"GET /api/v1/healthz HTTP/1.1\r\nX: " + b"a" * 70000 + b"\r\n\r\n", 431),
    ],
)
def test_broken_framing_is_a_client_error(
    target: Target, name: str, payload: bytes, status: int | None
) -> None:
    answer = _raw(target, payload)
    if status is None:  # HTTP/0.9: a bare body, no status line
        assert answer == b'{"status":"ok"}'
    else:
        code = _status(answer)
        assert 400 <= code < 500 or code == 200, answer[:300]
        if status >= 100:
            assert code == status, answer[:300]
    assert target.healthy()


def test_a_stalled_partial_request_blocks_nobody_and_is_cut(target: Target) -> None:
    host, port = target.url.removeprefix("http://").rsplit(":", 1)
    stalled = [socket.create_connection((host, int(port)), timeout=30) for _ in range(20)]
    try:
        for index, sock in enumerate(stalled):
            if index % 2:  # headers never finish
                sock.sendall(b"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\n")
            else:  # the body never arrives
                sock.sendall(_request(b'{"ta', length=100))
        started = time.monotonic()
        assert target.healthy()  # other clients are served meanwhile
        assert time.monotonic() - started < IDLE_SECONDS
        for sock in stalled:
            while sock.recv(65536):  # read until the server hangs up
                pass
        cut_after = time.monotonic() - started
        assert cut_after < IDLE_SECONDS + 5.0
    finally:
        for sock in stalled:
            sock.close()
    assert target.healthy()


def test_many_concurrent_hostile_clients_leave_the_server_serving(target: Target) -> None:
    errors: list[BaseException] = []

    def hammer() -> None:
        try:
            for index in range(20):
                _raw(target, _request(b"{" * index, length=index + 3 if index % 3 else None))
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=hammer) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors
    assert target.healthy()
