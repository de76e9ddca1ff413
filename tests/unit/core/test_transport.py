"""Transport: one request in, one reply or connection error out; headers, pools, TLS, proxies.

Requests go over real loopback HTTP to the shared fake service; the requests.Session path (used
when following redirects or through a proxy) is checked with `responses`. Retries are
tinker._retry's (tests/unit/core/test_retry.py); here a call is sent through the runner.
"""

from __future__ import annotations

import logging
import platform
from collections.abc import Callable

import pytest
import requests
import responses
from core_helpers import PATH, Made
from support.fake_service import FakeService, Reply

from tinker._transport import Traffic
from tinker.errors import APIResponseValidationError

MakeTransport = Callable[..., Made]


def test_every_protocol_header_is_sent(service: FakeService, make_transport: MakeTransport) -> None:
    made = make_transport(
        service.url, cloudflare_client_id="cf-id", cloudflare_client_secret="cf-secret"
    )
    reply = made.post()
    (request,) = service.seen(PATH)
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
    service: FakeService,
    make_transport: MakeTransport,
) -> None:
    made = make_transport(service.url)
    reply = made.send("GET", "/api/v1/healthz", timeout=45.0, params={"limit": 2, "offset": 4})
    (request,) = service.seen("/api/v1/healthz")
    assert "Content-Type" not in request.headers
    assert "X-Idempotency-Key" not in request.headers
    assert "Content-Length" not in request.headers
    assert request.headers["x-stainless-read-timeout"] == "45"
    assert request.query == "limit=2&offset=4"
    assert reply.url.endswith("/api/v1/healthz?limit=2&offset=4")


def test_bodyless_post_and_delete_carry_content_type_and_zero_length(
    service: FakeService, make_transport: MakeTransport
) -> None:
    made = make_transport(service.url)
    made.send("DELETE", "/api/v1/x")
    made.send("POST", "/api/v1/y", timeout=5.5)
    for request in service.seen("/api/v1/x") + service.seen("/api/v1/y"):
        assert request.headers["Content-Type"] == "application/json"
        assert request.headers["Content-Length"] == "0"
        assert "X-Idempotency-Key" in request.headers
    assert service.seen("/api/v1/y")[0].headers["x-stainless-read-timeout"] == "5.5"


def test_base_url_path_prefix_is_kept(service: FakeService, make_transport: MakeTransport) -> None:
    made = make_transport(f"{service.url}/services/tinker-prod/")
    made.send("GET", "/api/v1/sessions/a:b")
    assert service.requests[0].path == "/services/tinker-prod/api/v1/sessions/a:b"


def test_default_headers_override_auth_and_call_headers_are_added(
    service: FakeService, make_transport: MakeTransport
) -> None:
    made = make_transport(service.url, default_headers={"X-API-Key": "from-env", "X-Extra": "1"})
    made.post(headers={"X-Tinker-Sampling-Backpressure": "1"})
    sent = service.seen(PATH)[0].headers
    assert sent["X-API-Key"] == "from-env"
    assert sent["X-Extra"] == "1"
    assert sent["X-Tinker-Sampling-Backpressure"] == "1"


def test_non_json_success_body_is_rejected_by_reply_json(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push(PATH, Reply(200, raw=b"<html>oops</html>"))
    reply = make_transport(service.url).post()
    assert reply.body == "<html>oops</html>" and not reply.is_json
    with pytest.raises(APIResponseValidationError, match="Expected a JSON response"):
        reply.json()


def test_debug_log_redacts_secrets(
    service: FakeService, make_transport: MakeTransport, caplog: pytest.LogCaptureFixture
) -> None:
    made = make_transport(service.url, cloudflare_client_secret="cf-secret-value")
    with caplog.at_level(logging.DEBUG, logger="tinker"):
        made.post(headers={"X-Custom": "sk-very-secret"})
    text = caplog.text
    assert "POST" in text and PATH in text
    assert "sk-very-secret" not in text
    assert "cf-secret-value" not in text


def test_tls_verification_is_on_by_default_and_configurable(
    make_transport: MakeTransport,
) -> None:
    secure = make_transport("https://tinker.test").transport
    pool = secure._pools[Traffic.TRAIN]
    assert pool.cert_reqs == "CERT_REQUIRED"  # type: ignore[attr-defined]
    assert pool.ca_certs  # type: ignore[attr-defined]
    assert all(session.verify for session in secure._sessions.values())
    insecure = make_transport("https://tinker.test", verify_tls=False).transport
    assert insecure._pools[Traffic.TRAIN].cert_reqs == "CERT_NONE"  # type: ignore[attr-defined]
    assert all(session.verify is False for session in insecure._sessions.values())


def test_pools_are_sized_per_traffic_kind(
    service: FakeService, make_transport: MakeTransport
) -> None:
    transport = make_transport(service.url, pool_sizes={"poll": 7}).transport
    assert transport._pools[Traffic.POLL].pool.maxsize == 7  # type: ignore[union-attr]
    assert transport._pools[Traffic.SAMPLE].pool.maxsize == 128  # type: ignore[union-attr]
    assert transport._pools[Traffic.POLL] is not transport._pools[Traffic.SAMPLE]


def test_connections_are_kept_alive(service: FakeService, make_transport: MakeTransport) -> None:
    made = make_transport(service.url)
    for _ in range(5):
        made.post()
    assert made.transport._pools[Traffic.TRAIN].num_connections == 1


@responses.activate
def test_redirect_following_uses_the_session_and_keeps_headers(
    make_transport: MakeTransport,
) -> None:
    responses.get("http://tinker.test/api/v1/old", status=302, headers={"Location": "/api/v1/new"})
    responses.get("http://tinker.test/api/v1/new", json={"moved": True})
    made = make_transport("http://tinker.test")
    reply = made.send("GET", "/api/v1/old", allow_redirects=True)
    assert reply.body == {"moved": True} and reply.url == "http://tinker.test/api/v1/new"
    assert responses.calls[1].request.headers["X-API-Key"] == "sk-very-secret"


def test_redirects_are_not_followed_by_default(
    service: FakeService, make_transport: MakeTransport
) -> None:
    service.push("/api/v1/old", Reply(302, headers={"Location": "/api/v1/new"}))
    reply = make_transport(service.url).send("GET", "/api/v1/old")
    assert reply.status_code == 302 and reply.headers["location"] == "/api/v1/new"
    assert service.seen("/api/v1/new") == []


@responses.activate
def test_proxy_from_environment_routes_through_the_session(
    monkeypatch: pytest.MonkeyPatch, make_transport: MakeTransport
) -> None:
    monkeypatch.setenv("HTTP_PROXY", "http://proxy.test:3128")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    responses.post("http://tinker.test/api/v1/forward", body=requests.ConnectionError("down"))
    responses.post("http://tinker.test/api/v1/forward", json={"ok": 1})
    made = make_transport("http://tinker.test")
    assert made.post().body == {"ok": 1}
    assert made.sleeps == [0.5]
    assert made.transport._sessions[Traffic.TRAIN].proxies["http"] == "http://proxy.test:3128"
