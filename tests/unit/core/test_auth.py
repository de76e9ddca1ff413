"""The JWT exchange: tokens fetched with the API key, renewed before expiry and after the
server calls one invalid, sent as X-API-Key on every other request."""

from __future__ import annotations

import base64
import itertools
import json
from collections.abc import Iterator

import pytest
from support.fake_service import FakeService, Reply

from tinker._auth import JwtCredential, token_expiry
from tinker._calls import ApiCall
from tinker._runtime import Runtime, RuntimeOptions
from tinker._session import open_session
from tinker._transport import Traffic
from tinker.config import ClientConfig

API_KEY = "tml-raw-key"


def _jwt(number: int, expiry: float) -> str:
    claims = base64.urlsafe_b64encode(json.dumps({"exp": expiry, "n": number}).encode())
    return f"eyJhbGciOiJIUzI1NiJ9.{claims.decode().rstrip('=')}.sig{number}"


def test_the_expiry_is_read_from_the_claims() -> None:
    assert token_expiry(_jwt(1, 1234.0)) == 1234.0
    assert token_expiry("not-a-jwt") is None
    assert token_expiry("a.!!!.c") is None


def test_a_token_is_reused_until_60_seconds_before_it_expires() -> None:
    now = [1000.0]
    numbers = itertools.count(1)
    credential = JwtCredential(lambda: _jwt(next(numbers), 1100.0), clock=lambda: now[0])
    first = credential.token()
    now[0] = 1039.0
    assert credential.token() == first
    now[0] = 1040.0  # 60 s left: renewed
    assert credential.token() == _jwt(2, 1100.0)


def test_invalidate_renews_only_the_rejected_token() -> None:
    numbers = itertools.count(1)
    credential = JwtCredential(lambda: _jwt(next(numbers), 10**10))
    first = credential.token()
    credential.invalidate("some older token")
    assert credential.token() == first
    credential.invalidate(first)
    assert credential.token() == _jwt(2, 10**10)
    assert "eyJ" not in repr(credential)


@pytest.fixture
def jwt_service() -> Iterator[FakeService]:
    numbers = itertools.count(1)
    with FakeService(session_id="SJ", client_config={"pjwt_auth_enabled": True}) as svc:
        svc.direct("POST", "/api/v1/auth/token", lambda body: {"jwt": _jwt(next(numbers), 1e10)})
        yield svc


def _open(service: FakeService) -> Runtime:
    config = ClientConfig(api_key=API_KEY, base_url=service.url, telemetry=False)
    return open_session(config, options=RuntimeOptions(heartbeat=False))


def test_requests_after_the_config_carry_the_token(jwt_service: FakeService) -> None:
    runtime = _open(jwt_service)
    try:
        keys = {r.path: r.headers["X-API-Key"] for r in jwt_service.requests}
        assert keys["/api/v1/client/config"] == API_KEY
        assert keys["/api/v1/auth/token"] == API_KEY
        assert jwt_service.bodies("/api/v1/auth/token") == [{}]
        assert keys["/api/v1/client/dynamic_config"] == _jwt(1, 1e10)
        assert keys["/api/v1/create_session"] == _jwt(1, 1e10)
    finally:
        runtime.close()


def test_an_invalid_token_answer_fetches_a_new_one_and_replays_once(
    jwt_service: FakeService,
) -> None:
    runtime = _open(jwt_service)
    try:
        challenge = {"WWW-Authenticate": 'Bearer error="invalid_token"'}
        jwt_service.push("/api/v1/thing", Reply(401, {"detail": "expired"}, headers=challenge))
        jwt_service.direct("POST", "/api/v1/thing", lambda body: {"ok": True})
        call = ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/thing", body={})
        assert runtime.call(call) == {"ok": True}
        sent = [r.headers["X-API-Key"] for r in jwt_service.seen("/api/v1/thing")]
        assert sent == [_jwt(1, 1e10), _jwt(2, 1e10)]
        assert len(jwt_service.seen("/api/v1/auth/token")) == 2
    finally:
        runtime.close()


def test_a_401_without_the_invalid_token_challenge_is_not_replayed(
    jwt_service: FakeService,
) -> None:
    runtime = _open(jwt_service)
    try:
        jwt_service.push("/api/v1/thing", Reply(401, {"detail": "no such key"}))
        call = ApiCall(traffic=Traffic.TRAIN, method="POST", path="/api/v1/thing", body={})
        with pytest.raises(Exception, match="no such key"):
            runtime.call(call)
        assert len(jwt_service.seen("/api/v1/thing")) == 1
        assert len(jwt_service.seen("/api/v1/auth/token")) == 1
    finally:
        runtime.close()
