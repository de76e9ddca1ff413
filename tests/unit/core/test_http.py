"""Transport: headers, retries (attempts, delays, Retry-After, idempotency key), error mapping.

Requests go over real loopback HTTP to the in-test service; the requests.Session path (used
when following redirects or through a proxy) is checked with `responses`.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Iterator

import pytest
import requests
import responses
from core_fake_service import FakeService, Scripted

from tinker._http import Reply, Traffic, Transport, encode_json, json_body
from tinker.config import ClientConfig
from tinker.errors import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    BadRequestError,
    ConflictError,
    InternalServerError,
    NotFoundError,
    RateLimitError,
)

PATH = "/api/v1/forward"


@pytest.fixture
def svc() -> Iterator[FakeService]:
    with FakeService() as service:
        yield service


class Made:
    def __init__(self, transport: Transport, sleeps: list[float]) -> None:
        self.transport = transport
        self.sleeps = sleeps

    def post(self, **kwargs: object) -> Reply:
        return self.transport.request(
            Traffic.TRAIN, "POST", PATH, content=encode_json({"a": 1}), **kwargs
        )  # type: ignore[arg-type]


def make(base_url: str, **config: object) -> Made:
    sleeps: list[float] = []
    cfg = ClientConfig(api_key="sk-very-secret", base_url=base_url, **config)  # type: ignore[arg-type]
    transport = Transport(cfg, sleep=sleeps.append, uniform=lambda: 0.0, wall_clock=lambda: 1e9)
    return Made(transport, sleeps)


def test_every_protocol_header_is_sent(svc: FakeService) -> None:
    made = make(svc.url, cloudflare_client_id="cf-id", cloudflare_client_secret="cf-secret")
    reply = made.post()
    (request,) = svc.seen(PATH)
    sent = request.headers
    assert sent["X-API-Key"] == "sk-very-secret"
    assert "Authorization" not in sent
    assert sent["Accept"] == "application/json"
    assert sent["Content-Type"] == "application/json"
    assert sent["Content-Length"] == "7"
    assert sent["User-Agent"] == "AsyncTinker/Python 0.5.1"
    assert sent["X-Stainless-Package-Version"] == "0.5.1"
    expected_os = {"Linux": "Linux", "Darwin": "MacOS", "Windows": "Windows"}
    assert sent["X-Stainless-OS"] == expected_os.get(platform.system(), sent["X-Stainless-OS"])
    arch = sent["X-Stainless-Arch"]
    assert arch in ("x64", "arm64", "arm", "x32") or arch.startswith("other:")
    assert sent["X-Stainless-Runtime"] == platform.python_implementation()
    assert sent["X-Stainless-Runtime-Version"] == platform.python_version()
    assert sent["X-Stainless-Async"] == "async:asyncio"
    assert sent["x-stainless-retry-count"] == "0"
    assert sent["x-stainless-read-timeout"] == "60"
    assert sent["X-Idempotency-Key"].startswith("stainless-python-retry-")
    assert sent["CF-Access-Client-Id"] == "cf-id"
    assert sent["CF-Access-Client-Secret"] == "cf-secret"
    assert sent["Connection"] == "keep-alive"
    assert request.body == {"a": 1}
    assert reply.status_code == 200 and "request_id" in reply.body


def test_get_has_no_content_type_nor_idempotency_key_and_timeout_header_follows(
    svc: FakeService,
) -> None:
    made = make(svc.url)
    reply = made.transport.request(
        Traffic.TRAIN, "GET", "/api/v1/healthz", timeout=45.0, params={"limit": 2, "offset": 4}
    )
    (request,) = svc.seen("/api/v1/healthz")
    assert "Content-Type" not in request.headers
    assert "X-Idempotency-Key" not in request.headers
    assert "Content-Length" not in request.headers
    assert request.headers["x-stainless-read-timeout"] == "45"
    assert request.query == "limit=2&offset=4"
    assert reply.url.endswith("/api/v1/healthz?limit=2&offset=4")


def test_bodyless_post_and_delete_carry_content_type_and_zero_length(svc: FakeService) -> None:
    made = make(svc.url)
    made.transport.request(Traffic.TRAIN, "DELETE", "/api/v1/x")
    made.transport.request(Traffic.TRAIN, "POST", "/api/v1/y", timeout=5.5)
    for request in svc.seen("/api/v1/x") + svc.seen("/api/v1/y"):
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Content-Length"] == "0"
        assert "X-Idempotency-Key" in request.headers
    assert svc.seen("/api/v1/y")[0].headers["x-stainless-read-timeout"] == "5.5"


def test_base_url_path_prefix_is_kept(svc: FakeService) -> None:
    made = make(f"{svc.url}/services/tinker-prod/")
    made.transport.request(Traffic.TRAIN, "GET", "/api/v1/sessions/a:b")
    assert svc.requests[0].path == "/services/tinker-prod/api/v1/sessions/a:b"


def test_default_headers_override_auth_and_call_headers_are_added(svc: FakeService) -> None:
    made = make(svc.url, default_headers={"X-API-Key": "from-env", "X-Extra": "1"})
    made.post(headers={"X-Tinker-Sampling-Backpressure": "1"})
    sent = svc.seen(PATH)[0].headers
    assert sent["X-API-Key"] == "from-env"
    assert sent["X-Extra"] == "1"
    assert sent["X-Tinker-Sampling-Backpressure"] == "1"


RETRIED = [
    (408, APIStatusError),
    (409, ConflictError),
    (429, RateLimitError),
    (500, InternalServerError),
    (503, InternalServerError),
]


@pytest.mark.parametrize(("status", "error"), RETRIED)
def test_retryable_status_is_retried_max_retries_times_with_backoff(
    svc: FakeService, status: int, error: type[APIStatusError]
) -> None:
    svc.push(PATH, *[Scripted(status, {"detail": "nope"})] * 5)
    made = make(svc.url, max_retries=4)
    with pytest.raises(error) as info:
        made.post()
    assert type(info.value) is error
    assert info.value.status_code == status
    assert info.value.body == {"detail": "nope"}
    assert str(info.value) == f"Error code: {status} - {{'detail': 'nope'}}"
    requests_seen = svc.seen(PATH)
    assert len(requests_seen) == 5
    assert made.sleeps == [0.5, 1.0, 2.0, 4.0]
    assert len({r.headers["X-Idempotency-Key"] for r in requests_seen}) == 1
    counts = [r.headers["x-stainless-retry-count"] for r in requests_seen]
    assert counts == ["0", "1", "2", "3", "4"]


def test_default_max_retries_is_ten_with_capped_backoff(svc: FakeService) -> None:
    svc.push(PATH, *[Scripted(500)] * 11)
    made = make(svc.url)
    with pytest.raises(InternalServerError, match=r"^Error code: 500$"):
        made.post()
    assert len(svc.seen(PATH)) == 11
    assert made.sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]


def test_retry_after_is_used_exactly_then_success(svc: FakeService) -> None:
    svc.push(
        PATH,
        Scripted(503, headers={"retry-after-ms": "250"}),
        Scripted(429, headers={"retry-after": "2"}),
        Scripted(429, headers={"retry-after": "120"}),  # out of range: backoff instead
    )
    made = make(svc.url)
    assert "request_id" in made.post().body
    assert made.sleeps == [0.25, 2.0, 2.0]
    assert len({r.headers["X-Idempotency-Key"] for r in svc.seen(PATH)}) == 1


def test_each_logical_call_gets_a_new_idempotency_key(svc: FakeService) -> None:
    made = make(svc.url)
    made.post()
    made.post()
    first, second = (r.headers["X-Idempotency-Key"] for r in svc.seen(PATH))
    assert first != second


def test_x_should_retry_header_overrides_status(svc: FakeService) -> None:
    made = make(svc.url)
    svc.push(PATH, Scripted(503, headers={"x-should-retry": "false"}))
    with pytest.raises(InternalServerError):
        made.post()
    assert len(svc.seen(PATH)) == 1 and made.sleeps == []
    svc.push(PATH, Scripted(400, headers={"x-should-retry": "true"}))
    assert "request_id" in made.post().body
    assert len(svc.seen(PATH)) == 3


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (410, APIStatusError)]
)
def test_other_client_errors_raise_at_once_with_the_body(
    svc: FakeService, status: int, error: type[APIStatusError]
) -> None:
    svc.push(PATH, Scripted(status, raw=b"plain text failure"))
    made = make(svc.url)
    with pytest.raises(error) as info:
        made.post()
    assert type(info.value) is error
    assert info.value.body == "plain text failure"
    assert made.sleeps == [] and len(svc.seen(PATH)) == 1


def test_connection_reset_becomes_api_connection_error_after_retries(svc: FakeService) -> None:
    svc.push(PATH, *[Scripted(200, drop=True)] * 4)
    made = make(svc.url, max_retries=3)
    with pytest.raises(APIConnectionError) as info:
        made.post()
    assert type(info.value) is APIConnectionError
    assert str(info.value) == "Connection error."
    assert info.value.__cause__ is not None
    assert len(svc.seen(PATH)) == 4 and made.sleeps == [0.5, 1.0, 2.0]
    assert len({r.headers["X-Idempotency-Key"] for r in svc.seen(PATH)}) == 1


def test_read_timeout_becomes_api_timeout_error_after_retries(svc: FakeService) -> None:
    svc.push(PATH, *[Scripted(200, {"late": True}, delay=0.5)] * 3)
    made = make(svc.url, max_retries=2)
    with pytest.raises(APITimeoutError, match=r"^Request timed out\.$"):
        made.post(timeout=0.1)
    # The client gave up before the service answered: wait for it to record the last one.
    assert len(svc.wait_seen(PATH, 3)) == 3 and made.sleeps == [0.5, 1.0]


def test_connection_error_then_success(svc: FakeService) -> None:
    svc.push(PATH, Scripted(200, drop=True))
    made = make(svc.url)
    assert "request_id" in made.post().body
    assert made.sleeps == [0.5]


def test_refused_connection_is_a_connection_error() -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    made = make(f"http://127.0.0.1:{port}", max_retries=1)
    with pytest.raises(APIConnectionError):
        made.post()
    assert made.sleeps == [0.5]


def test_max_retries_zero_sends_once(svc: FakeService) -> None:
    svc.push(PATH, Scripted(503))
    made = make(svc.url)
    with pytest.raises(InternalServerError):
        made.post(max_retries=0)
    assert len(svc.seen(PATH)) == 1 and made.sleeps == []


def test_non_json_success_body_is_rejected_by_json_body(svc: FakeService) -> None:
    svc.push(PATH, Scripted(200, raw=b"<html>oops</html>"))
    reply = make(svc.url).post()
    assert reply.body == "<html>oops</html>" and not reply.is_json
    with pytest.raises(APIResponseValidationError, match="Expected a JSON response"):
        json_body(reply)


def test_debug_log_redacts_secrets(svc: FakeService, caplog: pytest.LogCaptureFixture) -> None:
    made = make(svc.url, cloudflare_client_secret="cf-secret-value")
    with caplog.at_level(logging.DEBUG, logger="tinker"):
        made.post(headers={"X-Custom": "sk-very-secret"})
    text = caplog.text
    assert "POST" in text and PATH in text
    assert "sk-very-secret" not in text
    assert "cf-secret-value" not in text


def test_tls_verification_is_on_by_default_and_configurable() -> None:
    secure = make("https://tinker.test").transport
    pool = secure._pools[Traffic.TRAIN]
    assert pool.cert_reqs == "CERT_REQUIRED"  # type: ignore[attr-defined]
    assert pool.ca_certs  # type: ignore[attr-defined]
    assert all(session.verify for session in secure._sessions.values())
    insecure = make("https://tinker.test", verify_tls=False).transport
    assert insecure._pools[Traffic.TRAIN].cert_reqs == "CERT_NONE"  # type: ignore[attr-defined]
    assert all(session.verify is False for session in insecure._sessions.values())


def test_pools_are_sized_per_traffic_kind(svc: FakeService) -> None:
    transport = make(svc.url, pool_sizes={"poll": 7}).transport
    assert transport._pools[Traffic.POLL].pool.maxsize == 7  # type: ignore[union-attr]
    assert transport._pools[Traffic.SAMPLE].pool.maxsize == 128  # type: ignore[union-attr]
    assert transport._pools[Traffic.POLL] is not transport._pools[Traffic.SAMPLE]


def test_connections_are_kept_alive(svc: FakeService) -> None:
    made = make(svc.url)
    for _ in range(5):
        made.post()
    assert made.transport._pools[Traffic.TRAIN].num_connections == 1


@responses.activate
def test_redirect_following_uses_the_session_and_keeps_headers() -> None:
    responses.get("http://tinker.test/api/v1/old", status=302, headers={"Location": "/api/v1/new"})
    responses.get("http://tinker.test/api/v1/new", json={"moved": True})
    made = make("http://tinker.test")
    reply = made.transport.request(Traffic.TRAIN, "GET", "/api/v1/old", allow_redirects=True)
    assert reply.body == {"moved": True} and reply.url == "http://tinker.test/api/v1/new"
    assert responses.calls[1].request.headers["X-API-Key"] == "sk-very-secret"


def test_redirects_are_not_followed_by_default(svc: FakeService) -> None:
    svc.push("/api/v1/old", Scripted(302, headers={"Location": "/api/v1/new"}))
    reply = make(svc.url).transport.request(Traffic.TRAIN, "GET", "/api/v1/old")
    assert reply.status_code == 302 and reply.headers["location"] == "/api/v1/new"
    assert svc.seen("/api/v1/new") == []


@responses.activate
def test_proxy_from_environment_routes_through_the_session(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    responses.post("http://tinker.test/api/v1/forward", body=requests.ConnectionError("down"))
    responses.post("http://tinker.test/api/v1/forward", json={"ok": 1})
    made = make("http://tinker.test")
    assert made.post().body == {"ok": 1}
    assert made.sleeps == [0.5]
    assert made.transport._sessions[Traffic.TRAIN].proxies["http"] == "http://proxy.test:3128"


def test_encode_json_is_compact_and_refuses_nan() -> None:
    assert encode_json({"a": [1, 2], "t": "é"}) == '{"a":[1,2],"t":"é"}'.encode()
    with pytest.raises(ValueError, match="NaN or infinity"):
        encode_json({"x": float("nan")})
