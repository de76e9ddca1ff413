"""Transport: headers, retries (attempts, delays, Retry-After, idempotency key), error mapping."""

from __future__ import annotations

import logging
import platform

import pytest
import requests
import responses

from tinker._http import Traffic, Transport, encode_json
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

BASE = "http://tinker.test/base"
URL = f"{BASE}/api/v1/forward"


def make_transport(**config: object) -> tuple[Transport, list[float]]:
    sleeps: list[float] = []
    cfg = ClientConfig(api_key="sk-very-secret", base_url=BASE, **config)  # type: ignore[arg-type]
    transport = Transport(cfg, sleep=sleeps.append, uniform=lambda: 0.0, wall_clock=lambda: 1e9)
    return transport, sleeps


def post(transport: Transport, **kwargs: object) -> object:
    return transport.request(
        Traffic.TRAIN, "POST", "/api/v1/forward", content=encode_json({"a": 1}), **kwargs
    )


@responses.activate
def test_every_protocol_header_is_sent() -> None:
    responses.post(URL, json={"ok": True})
    transport, _ = make_transport(
        cloudflare_client_id="cf-id", cloudflare_client_secret="cf-secret"
    )
    reply = post(transport)
    sent = responses.calls[0].request.headers
    assert sent["X-API-Key"] == "sk-very-secret"
    assert "Authorization" not in sent
    assert sent["Accept"] == "application/json"
    assert sent["Content-Type"] == "application/json"
    assert sent["User-Agent"] == "AsyncTinker/Python 0.5.1"
    assert sent["X-Stainless-Package-Version"] == "0.5.1"
    assert sent["X-Stainless-OS"] == {"Linux": "Linux", "Darwin": "MacOS"}.get(
        platform.system(), sent["X-Stainless-OS"]
    )
    assert sent["X-Stainless-Arch"] in ("x64", "arm64", "arm", "x32") or sent[
        "X-Stainless-Arch"
    ].startswith("other:")
    assert sent["X-Stainless-Runtime"] == platform.python_implementation()
    assert sent["X-Stainless-Runtime-Version"] == platform.python_version()
    assert sent["X-Stainless-Async"] == "async:asyncio"
    assert sent["x-stainless-retry-count"] == "0"
    assert sent["x-stainless-read-timeout"] == "60"
    assert sent["X-Idempotency-Key"].startswith("stainless-python-retry-")
    assert sent["CF-Access-Client-Id"] == "cf-id"
    assert sent["CF-Access-Client-Secret"] == "cf-secret"
    assert responses.calls[0].request.body == b'{"a":1}'
    assert reply.body == {"ok": True}  # type: ignore[attr-defined]


@responses.activate
def test_get_has_no_content_type_nor_idempotency_key_and_timeout_header_follows() -> None:
    responses.get(f"{BASE}/api/v1/healthz", json={"status": "ok"})
    transport, _ = make_transport()
    transport.request(Traffic.TRAIN, "GET", "/api/v1/healthz", timeout=45.0, params={"limit": 2})
    sent = responses.calls[0].request
    assert "Content-Type" not in sent.headers
    assert "X-Idempotency-Key" not in sent.headers
    assert sent.headers["x-stainless-read-timeout"] == "45"
    assert sent.url.endswith("/api/v1/healthz?limit=2")


@responses.activate
def test_bodyless_post_and_delete_carry_content_type() -> None:
    responses.delete(f"{BASE}/api/v1/x")
    responses.post(f"{BASE}/api/v1/y")
    transport, _ = make_transport()
    assert transport.request(Traffic.TRAIN, "DELETE", "/api/v1/x").body is None
    transport.request(Traffic.TRAIN, "POST", "/api/v1/y", timeout=5.5)
    for call in responses.calls:
        assert call.request.headers["Content-Type"] == "application/json"
        assert "X-Idempotency-Key" in call.request.headers
    assert responses.calls[1].request.headers["x-stainless-read-timeout"] == "5.5"


@responses.activate
def test_default_headers_override_auth_and_call_headers_are_added() -> None:
    responses.post(URL, json={})
    transport, _ = make_transport(default_headers={"X-API-Key": "from-env", "X-Extra": "1"})
    post(transport, headers={"X-Tinker-Sampling-Backpressure": "1"})
    sent = responses.calls[0].request.headers
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
@responses.activate
def test_retryable_status_is_retried_max_retries_times_with_backoff(
    status: int, error: type[Exception]
) -> None:
    responses.post(URL, status=status, json={"detail": "nope"})
    transport, sleeps = make_transport(max_retries=4)
    with pytest.raises(error) as info:
        post(transport)
    assert type(info.value) is error
    assert info.value.status_code == status  # type: ignore[attr-defined]
    assert info.value.body == {"detail": "nope"}  # type: ignore[attr-defined]
    assert str(info.value) == f"Error code: {status} - {{'detail': 'nope'}}"
    assert len(responses.calls) == 5
    assert sleeps == [0.5, 1.0, 2.0, 4.0]
    keys = {call.request.headers["X-Idempotency-Key"] for call in responses.calls}
    assert len(keys) == 1
    counts = [call.request.headers["x-stainless-retry-count"] for call in responses.calls]
    assert counts == ["0", "1", "2", "3", "4"]


@responses.activate
def test_default_max_retries_is_ten_with_capped_backoff() -> None:
    responses.post(URL, status=500)
    transport, sleeps = make_transport()
    with pytest.raises(InternalServerError, match=r"^Error code: 500$"):
        post(transport)
    assert len(responses.calls) == 11
    assert sleeps == [0.5, 1.0, 2.0, 4.0, 8.0, 10.0, 10.0, 10.0, 10.0, 10.0]


@responses.activate
def test_retry_after_is_used_exactly_then_success() -> None:
    responses.post(URL, status=503, headers={"retry-after-ms": "250"})
    responses.post(URL, status=429, headers={"retry-after": "2"})
    responses.post(URL, status=429, headers={"retry-after": "120"})  # out of range: backoff
    responses.post(URL, json={"request_id": "r1"})
    transport, sleeps = make_transport()
    assert post(transport).body == {"request_id": "r1"}  # type: ignore[attr-defined]
    assert sleeps == [0.25, 2.0, 2.0]
    keys = {call.request.headers["X-Idempotency-Key"] for call in responses.calls}
    assert len(keys) == 1


@responses.activate
def test_each_logical_call_gets_a_new_idempotency_key() -> None:
    responses.post(URL, json={})
    transport, _ = make_transport()
    post(transport)
    post(transport)
    keys = [call.request.headers["X-Idempotency-Key"] for call in responses.calls]
    assert keys[0] != keys[1]


@responses.activate
def test_x_should_retry_header_overrides_status() -> None:
    responses.post(URL, status=503, headers={"x-should-retry": "false"})
    transport, sleeps = make_transport()
    with pytest.raises(InternalServerError):
        post(transport)
    assert len(responses.calls) == 1 and sleeps == []
    responses.reset()
    responses.post(URL, status=400, headers={"x-should-retry": "true"})
    responses.post(URL, json={"fine": 1})
    assert post(transport).body == {"fine": 1}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("status", "error"), [(400, BadRequestError), (404, NotFoundError), (410, APIStatusError)]
)
@responses.activate
def test_other_client_errors_raise_at_once(status: int, error: type[Exception]) -> None:
    responses.post(URL, status=status, body="plain text failure")
    transport, sleeps = make_transport()
    with pytest.raises(error) as info:
        post(transport)
    assert info.value.body == "plain text failure"  # type: ignore[attr-defined]
    assert sleeps == [] and len(responses.calls) == 1


@responses.activate
def test_connection_reset_becomes_api_connection_error_after_retries() -> None:
    responses.post(URL, body=requests.ConnectionError("Connection reset by peer"))
    transport, sleeps = make_transport(max_retries=3)
    with pytest.raises(APIConnectionError) as info:
        post(transport)
    assert type(info.value) is APIConnectionError
    assert str(info.value) == "Connection error."
    assert isinstance(info.value.__cause__, requests.ConnectionError)
    assert len(responses.calls) == 4 and sleeps == [0.5, 1.0, 2.0]
    keys = {call.request.headers["X-Idempotency-Key"] for call in responses.calls}
    assert len(keys) == 1


@responses.activate
def test_read_timeout_becomes_api_timeout_error_after_retries() -> None:
    responses.post(URL, body=requests.ReadTimeout("read timed out"))
    transport, sleeps = make_transport(max_retries=2)
    with pytest.raises(APITimeoutError, match=r"Request timed out\."):
        post(transport)
    assert len(responses.calls) == 3 and sleeps == [0.5, 1.0]


@responses.activate
def test_connection_error_then_success() -> None:
    responses.post(URL, body=requests.ConnectionError("reset"))
    responses.post(URL, json={"request_id": "r"})
    transport, sleeps = make_transport()
    assert post(transport).body == {"request_id": "r"}  # type: ignore[attr-defined]
    assert sleeps == [0.5]


@responses.activate
def test_max_retries_zero_sends_once() -> None:
    responses.post(URL, status=503)
    transport, sleeps = make_transport()
    with pytest.raises(InternalServerError):
        post(transport, max_retries=0)
    assert len(responses.calls) == 1 and sleeps == []


@responses.activate
def test_non_json_success_body_is_kept_as_text_for_the_caller_to_reject() -> None:
    from tinker._http import json_body

    responses.post(URL, body="<html>oops</html>", status=200)
    transport, _ = make_transport()
    reply = post(transport)
    with pytest.raises(APIResponseValidationError, match="Expected a JSON response"):
        json_body(reply)  # type: ignore[arg-type]


@responses.activate
def test_debug_log_redacts_secrets(caplog: pytest.LogCaptureFixture) -> None:
    responses.post(URL, json={})
    transport, _ = make_transport(cloudflare_client_secret="cf-secret-value")
    with caplog.at_level(logging.DEBUG, logger="tinker"):
        post(transport, headers={"X-Custom": "sk-very-secret"})
    text = caplog.text
    assert "POST" in text and "/api/v1/forward" in text
    assert "sk-very-secret" not in text
    assert "cf-secret-value" not in text


def test_tls_verification_is_on_by_default_and_configurable() -> None:
    transport, _ = make_transport()
    assert all(session.verify is True for session in transport._sessions.values())
    insecure, _ = make_transport(verify_tls=False)
    assert all(session.verify is False for session in insecure._sessions.values())


def test_pools_are_sized_per_traffic_kind() -> None:
    transport, _ = make_transport(pool_sizes={"poll": 7})
    adapter = transport._sessions[Traffic.POLL].get_adapter("http://x")
    assert adapter._pool_maxsize == 7  # type: ignore[attr-defined]
    sample = transport._sessions[Traffic.SAMPLE].get_adapter("https://x")
    assert sample._pool_maxsize == 128  # type: ignore[attr-defined]


def test_encode_json_is_compact_and_refuses_nan() -> None:
    assert encode_json({"a": [1, 2], "t": "é"}) == '{"a":[1,2],"t":"é"}'.encode()
    with pytest.raises(ValueError, match="NaN or infinity"):
        encode_json({"x": float("nan")})


def test_url_join_keeps_base_path() -> None:
    transport, _ = make_transport()
    assert transport.url("/api/v1/x") == f"{BASE}/api/v1/x"
    assert transport.url("api/v1/sessions/a:b") == f"{BASE}/api/v1/sessions/a:b"
