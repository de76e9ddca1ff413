"""What one client can hold of the transport: the body before authentication, connections,
time; and the framing and methods it must answer properly."""

from __future__ import annotations

import contextlib
import logging
import pathlib
import socket
import struct
import threading
import time
import urllib.parse
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tinker.local import LocalServer, serve

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import API, WireClient

KEY = "s3cret"


def _address(server: LocalServer) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def _connect(server: LocalServer, timeout: float = 10.0) -> socket.socket:
    return socket.create_connection(_address(server), timeout=timeout)


def _head(method: str, path: str, *headers: str) -> bytes:
    lines = [f"{method} {API}/{path} HTTP/1.1", "Host: x", *headers, "", ""]
    return "\r\n".join(lines).encode()


def _read_all(sock: socket.socket) -> bytes:
    chunks = []
    while chunk := sock.recv(65536):
        chunks.append(chunk)
    return b"".join(chunks)


def _threads(server: LocalServer) -> int:
    """The connection threads of `server` (other servers of the process have their own)."""
    name = f"tinker-local-connection-{urllib.parse.urlsplit(server.url).port}"
    return sum(t.name == name for t in threading.enumerate())


@pytest.fixture
def keyed(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    with serve(data_dir=tmp_path / "keyed", backend=FakeBackend(), config=FAST, api_key=KEY) as srv:
        yield srv


def test_the_api_key_is_checked_before_the_body_is_read(keyed: LocalServer) -> None:
    with _connect(keyed, timeout=3.0) as sock:
        # 60 MB announced, none sent: the answer must not wait for the body.
        sock.sendall(
            _head("POST", "create_session", "X-API-Key: wrong", "Content-Length: 60000000")
        )
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 401 ")
    assert b"Connection: close" in answer
    assert answer.endswith(b'{"detail":"Invalid or missing API key (X-API-Key header)."}')


def test_an_unauthorised_upload_gets_its_401_not_a_reset(keyed: LocalServer) -> None:
    response = requests.post(
        f"{keyed.url}{API}/create_session",
        data=b"x" * (8 * 1024 * 1024),
        headers={"X-API-Key": "wrong"},
        timeout=30,
    )
    assert response.status_code == 401


def test_expect_continue_is_answered_only_after_authorisation(keyed: LocalServer) -> None:
    expect = ("Expect: 100-continue", "Content-Length: 2")
    with _connect(keyed) as sock:
        sock.sendall(_head("POST", "create_session", "X-API-Key: wrong", *expect))
        assert sock.recv(65536).startswith(b"HTTP/1.1 401 ")
    with _connect(keyed) as sock:
        sock.sendall(_head("POST", "create_session", f"X-API-Key: {KEY}", *expect))
        assert sock.recv(65536) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"{}")
        assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        (("Content-Length: 2", "Content-Length: 2"), "Conflicting Content-Length headers"),
        (("Content-Length: 2", "Content-Length: 7"), "Conflicting Content-Length headers"),
        (("Content-Length: 2, 2",), "Invalid Content-Length '2, 2'"),
        (("Content-Length: +2",), "Invalid Content-Length '+2'"),
        (("Content-Length: 1_0",), "Invalid Content-Length '1_0'"),
        (("Transfer-Encoding: gzip", "Content-Length: 2"), "Transfer-Encoding is not accepted"),
    ],
)
def test_ambiguous_framing_is_400_and_closes(
    server: LocalServer, headers: tuple[str, ...], detail: str
) -> None:
    with _connect(server) as sock:
        sock.sendall(_head("POST", "create_session", *headers) + b"{}")
        sock.shutdown(socket.SHUT_WR)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 400 ")
    assert b"Connection: close" in answer
    assert detail.encode() in answer


def test_head_answers_the_headers_of_get(client: WireClient) -> None:
    get = client.get("healthz")
    head = client.http.head(f"{client.url}{API}/healthz", timeout=10)
    assert head.status_code == 200
    assert head.content == b""
    assert head.headers["Content-Length"] == str(len(get.content))
    assert head.headers["Content-Type"] == "application/json"
    wrong = client.http.head(f"{client.url}{API}/create_session", timeout=10)
    assert wrong.status_code == 405 and wrong.headers["Allow"] == "POST"
    assert client.http.head(f"{client.url}{API}/healthz", timeout=10).status_code == 200


def test_options_lists_the_methods_of_a_path(client: WireClient, server: LocalServer) -> None:
    checkpoint = client.http.options(
        f"{client.url}{API}/training_runs/r:train:0/checkpoints/weights/c", timeout=10
    )
    assert checkpoint.status_code == 204
    assert checkpoint.headers["Allow"] == "DELETE, OPTIONS"
    runs = client.http.options(f"{client.url}{API}/training_runs", timeout=10)
    assert runs.headers["Allow"] == "GET, HEAD, OPTIONS"
    missing = client.http.options(f"{client.url}{API}/nothing_here", timeout=10)
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    with _connect(server) as sock:
        sock.sendall(b"OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n")
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 204 ")
    assert b"Allow: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS\r\n" in answer


def test_an_unknown_method_is_a_json_501(server: LocalServer) -> None:
    with _connect(server) as sock:
        sock.sendall(_head("BREW", "healthz"))
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 501 ")
    assert b"Content-Type: application/json" in answer
    assert answer.endswith(b'{"detail":"Unsupported method (\'BREW\')"}')


def _archive_location(url: str, host: str) -> str:
    with WireClient(url) as client:
        model_id = client.model(client.session())
        client.run("save_weights", {"model_id": model_id, "path": "arc", "seq_id": 1})
        response = client.get(
            f"training_runs/{model_id}/checkpoints/weights/arc/archive",
            allow_redirects=False,
            headers={"Host": host},
        )
    assert response.status_code == 302
    return response.headers["Location"]


def test_archive_links_never_come_from_the_host_header(tmp_path: pathlib.Path) -> None:
    with serve(data_dir=tmp_path / "a", backend=FakeBackend(), config=FAST) as srv:
        location = _archive_location(srv.url, "evil.example")
        assert location.startswith(f"{srv.url}/api/v1/archives/")
        assert requests.get(location, timeout=10).status_code == 200
    public = "https://tinker.example:8443/"
    with serve(
        data_dir=tmp_path / "b", backend=FakeBackend(), config=FAST, public_url=public
    ) as srv:
        location = _archive_location(srv.url, "evil.example")
        assert location.startswith("https://tinker.example:8443/api/v1/archives/")


@pytest.fixture
def strict(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    with serve(
        data_dir=tmp_path / "strict",
        backend=FakeBackend(),
        config=FAST,
        idle_connection_seconds=5.0,
        request_deadline_seconds=1.0,
        max_connections=4,
    ) as srv:
        yield srv


def _trickle(sock: socket.socket, payload: bytes, pause: float) -> float:
    """Send one byte every `pause` s until the server hangs up; the seconds it took."""
    started = time.monotonic()
    try:
        for byte in payload:
            sock.sendall(bytes([byte]))
            time.sleep(pause)
    except OSError:
        pass
    return time.monotonic() - started


def test_a_request_trickled_byte_by_byte_is_cut_at_its_deadline(strict: LocalServer) -> None:
    header = _head("POST", "create_session", "X-Padding: " + "p" * 200)
    with _connect(strict) as sock:
        took = _trickle(sock, header, 0.1)  # every byte well within the 5 s idle bound
    assert took < 3.0  # cut near the 1 s deadline, not after 200 bytes x 0.1 s

    with _connect(strict) as sock:
        sock.sendall(_head("POST", "create_session", "Content-Length: 100"))
        took = _trickle(sock, b"{" * 100, 0.1)
        answer = sock.recv(65536)
    assert took < 3.0
    assert answer.startswith(b"HTTP/1.1 408 ")
    assert b"the request did not arrive within 1 s" in answer


def test_idle_connections_make_room_for_new_ones(strict: LocalServer) -> None:
    idle = [_connect(strict) for _ in range(4)]
    try:
        time.sleep(0.2)
        started = time.monotonic()
        assert requests.get(f"{strict.url}{API}/healthz", timeout=10).status_code == 200
        assert time.monotonic() - started < 0.9  # before any deadline could free a slot
        closed = 0
        for sock in idle:
            sock.settimeout(0.5)
            with contextlib.suppress(TimeoutError):
                closed += sock.recv(1) == b""
        assert closed >= 1  # the longest-idle connections were closed for the newcomer
        assert _threads(strict) <= 4
    finally:
        for sock in idle:
            sock.close()


def test_busy_connections_leave_newcomers_in_the_backlog_without_threads(
    strict: LocalServer,
) -> None:
    busy = [_connect(strict) for _ in range(4)]
    try:
        for sock in busy:  # requests in progress: headers begun, never finished
            sock.sendall(b"POST /api/v1/create_session HTTP/1.1\r\n")
        time.sleep(0.2)
        waiting: list[Any] = []
        newcomer = threading.Thread(
            target=lambda: waiting.append(requests.get(f"{strict.url}{API}/healthz", timeout=10))
        )
        newcomer.start()
        newcomer.join(0.5)
        assert newcomer.is_alive()  # held in the listen backlog while all four are busy
        assert _threads(strict) == 4
        newcomer.join(10)  # served once the deadline has cut the busy ones
        assert waiting and waiting[0].status_code == 200
    finally:
        for sock in busy:
            sock.close()


def _reset(sock: socket.socket) -> None:
    """Close with a TCP reset, as the kernel does when a client process dies mid-exchange."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


@pytest.mark.parametrize(
    "sent",
    [
        b"POST /api/v1/create_session HTTP/1.1\r\nHost: x\r\n",  # reset while reading headers
        _head("POST", "create_session", "Content-Length: 100") + b"{",  # ... the body
    ],
    ids=["headers", "body"],
)
def test_a_client_that_disappears_is_one_log_line(
    server: LocalServer,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
    sent: bytes,
) -> None:
    with caplog.at_level(logging.INFO, logger="tinker.local"):
        sock = _connect(server)
        sock.sendall(sent)
        time.sleep(0.2)
        _reset(sock)
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.2)
    assert len(caplog.records) == 1, caplog.text
    record = caplog.records[0]
    assert "ConnectionResetError" in record.getMessage()
    assert record.exc_info is None
    assert "Traceback" not in capfd.readouterr().err
