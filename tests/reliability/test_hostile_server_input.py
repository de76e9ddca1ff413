"""Hostile input to the local server: fuzzed bodies and paths, broken framing, slow clients.

Whatever arrives, the server answers with a 4xx (never a 500), accepted futures never fail
with a server-side error, and it keeps serving other clients.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tinker.local
from tinker.local.server.routes import ROUTES

from .conftest import API_KEY
from .runs import MODEL

IDLE_SECONDS = 2.0
HEADERS = {"X-API-Key": API_KEY, "Content-Type": "application/json"}
POSTS = sorted(path for method, path, _, _ in ROUTES if method == "POST" and "(" not in path)


class Target:
    """A running server with a session, a model and a sampler the fuzzer can aim at."""

    def __init__(self, server: Any) -> None:
        self.server = server
        self.url = server.url
        self.http = requests.Session()
        self.http.headers.update(HEADERS)
        session = self.post("create_session", {"tags": [], "sdk_version": "0"}).json()
        self.session_id = session["session_id"]
        model = self.post(
            "create_model",
            {
                "session_id": self.session_id,
                "model_seq_id": 0,
                "base_model": MODEL,
                "lora_config": {"rank": 2},
            },
        ).json()
        self.model_id = self.result(model["request_id"])["model_id"]
        sampler = self.post(
            "create_sampling_session",
            {"session_id": self.session_id, "sampling_session_seq_id": 0, "base_model": MODEL},
        ).json()
        self.sampler_id = sampler["sampling_session_id"]

    def post(self, endpoint: str, body: Any) -> requests.Response:
        # json.dumps writes NaN and Infinity as bare words: more hostile input.
        return self.http.post(f"{self.url}/api/v1/{endpoint}", data=json.dumps(body), timeout=30)

    def result(self, request_id: str, bound: float = 20.0) -> Any:
        deadline = time.monotonic() + bound
        while time.monotonic() < deadline:
            reply = self.post("retrieve_future", {"request_id": request_id})
            if reply.status_code == 200:
                return reply.json()
            assert reply.status_code == 408, reply.text
        raise AssertionError(f"{request_id} still pending after {bound} s")

    def healthy(self) -> bool:
        return requests.get(f"{self.url}/api/v1/healthz", timeout=10).status_code == 200


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


def _check(target: Target, reply: requests.Response) -> None:
    assert reply.status_code != 500 and reply.status_code < 600, reply.text[:300]
    if reply.status_code == 200 and isinstance(body := _json(reply), dict):
        request_id = body.get("request_id")
        if isinstance(request_id, str) and body.get("type") != "try_again":
            outcome = target.result(request_id)
            assert outcome.get("category") != "server", outcome


def _json(reply: requests.Response) -> Any:
    try:
        return reply.json()
    except ValueError:
        return None


JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = st.sampled_from(
    [
        "session_id",
        "model_id",
        "seq_id",
        "request_id",
        "base_model",
        "model_path",
        "path",
        "sampling_session_id",
        "num_samples",
        "prompt",
        "sampling_params",
        "forward_backward_input",
        "forward_input",
        "adam_params",
        "lora_config",
        "events",
        "tinker_path",
        "loss_fn",
        "data",
    ]
)


def _valid_bodies(target: Target) -> dict[str, dict[str, Any]]:
    prompt = {"chunks": [{"type": "encoded_text", "tokens": [1, 2, 3]}]}
    datum = {
        "model_input": prompt,
        "loss_fn_inputs": {
            "target_tokens": {"data": [2, 3, 4], "dtype": "int64", "shape": [3]},
            "weights": {"data": [1.0, 1.0, 1.0], "dtype": "float32", "shape": [3]},
        },
    }
    fb = {"data": [datum], "loss_fn": "cross_entropy"}
    return {
        "forward_backward": {
            "model_id": target.model_id,
            "seq_id": None,
            "forward_backward_input": fb,
        },
        "forward": {"model_id": target.model_id, "seq_id": None, "forward_input": fb},
        "optim_step": {
            "model_id": target.model_id,
            "seq_id": None,
            "adam_params": {"learning_rate": 1e-3},
        },
        "asample": {
            "sampling_session_id": target.sampler_id,
            "num_samples": 1,
            "prompt": prompt,
            "sampling_params": {"max_tokens": 2},
        },
        "save_weights": {"model_id": target.model_id, "path": "fuzz"},
        "get_info": {"model_id": target.model_id},
    }


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(endpoint=st.sampled_from(POSTS), body=JSON)
def test_random_json_bodies_are_answered_without_a_server_error(
    target: Target, endpoint: str, body: Any
) -> None:
    _check(target, target.post(endpoint, body))


@settings(max_examples=250, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutated_valid_bodies_are_answered_without_a_server_error(
    target: Target, data: st.DataObject
) -> None:
    valid = _valid_bodies(target)
    endpoint = data.draw(st.sampled_from(sorted(valid)))
    body = json.loads(json.dumps(valid[endpoint]))
    body[data.draw(FIELDS)] = data.draw(JSON)
    _check(target, target.post(endpoint, body))


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE", "PATCH"]),
    segments=st.lists(
        st.text(st.characters(codec="ascii", exclude_characters="?#"), max_size=12)
        | st.sampled_from(["..", "%2e%2e", "training_runs", "checkpoints", "weights", "archive"]),
        min_size=1,
        max_size=6,
    ),
)
def test_random_paths_are_answered_without_a_server_error(
    target: Target, method: str, segments: list[str]
) -> None:
    path = "/".join(requests.utils.quote(s, safe="%.") for s in segments)
    reply = target.http.request(method, f"{target.url}/api/v1/{path}", timeout=30)
    assert reply.status_code != 500 and reply.status_code < 600, (path, reply.text[:300])


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
    """The status of a raw answer; an unparseable request line gets a headerless error page."""
    if answer.startswith(b"HTTP/"):
        return int(answer.split(b" ", 2)[1])
    found = re.search(rb"Error code: (\d+)", answer)
    assert found, answer[:300]
    return int(found.group(1))


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
