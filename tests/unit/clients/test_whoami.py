"""RestClient.whoami: the identity comes from the access token's claims, with no request of its
own; without JWT auth a plain API key carries none (RuntimeError)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from typing import Any

import pytest
from support.fake_service import FakeService

from tinker import types
from tinker.rest_client import RestClient
from tinker.service_client import ServiceClient

API_KEY = "tml-whoami-key"
IDENTITY_PATHS = ("/api/v1/client/config", "/api/v1/auth/token")


def _jwt(**claims: Any) -> str:
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    return f"eyJhbGciOiJIUzI1NiJ9.{payload}.signature"


TOKEN = _jwt(sub="tml:user:u1", org_id="o1", email="a@b.c", exp=10**10, iat=0)


@pytest.fixture
def jwt_service() -> Iterator[FakeService]:
    with FakeService(client_config={"pjwt_auth_enabled": True}) as svc:
        svc.direct("POST", "/api/v1/auth/token", lambda _body: {"jwt": TOKEN})
        yield svc


@pytest.fixture(autouse=True)
def _no_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("TINKER_API_KEY", "TINKER_BASE_URL"):
        monkeypatch.delenv(name, raising=False)


def _paths(service: FakeService) -> list[str]:
    return [r.path for r in service.requests]


def test_a_session_client_reads_the_identity_from_its_token(jwt_service: FakeService) -> None:
    with ServiceClient(api_key=API_KEY, base_url=jwt_service.url, telemetry=False) as service:
        runtime = service.holder  # the session: handshake, exchange, create_session
        before = len(jwt_service.requests)
        identity = RestClient(runtime).whoami().result(timeout=10)
        assert identity == types.WhoamiResponse(
            user_urn="tml:user:u1", org_urn="tml:organization:o1", email="a@b.c"
        )
        assert len(jwt_service.requests) == before


def test_a_standalone_client_asks_the_config_once_then_uses_tokens(
    jwt_service: FakeService,
) -> None:
    jwt_service.direct("GET", "/api/v1/sessions", lambda _body: {"sessions": []})
    rest = RestClient(base_url=jwt_service.url, api_key="tml-standalone-key")
    assert rest.whoami().result(timeout=10).org_urn == "tml:organization:o1"
    assert _paths(jwt_service) == list(IDENTITY_PATHS)
    assert rest.whoami().result(timeout=10).user_urn == "tml:user:u1"
    rest.list_sessions().result(timeout=10)
    assert _paths(jwt_service) == [*IDENTITY_PATHS, "/api/v1/sessions"]
    assert jwt_service.requests[-1].headers["X-API-Key"] == TOKEN  # later calls send the token


def test_an_empty_email_claim_is_none() -> None:
    from tinker._identity import identity_of

    assert identity_of(_jwt(sub="u", org_id="o", email="")).email is None
    with pytest.raises(RuntimeError, match=r"names no user \(sub\) or organization \(org_id\)"):
        identity_of(_jwt(org_id="o"))


def test_without_jwt_auth_a_plain_key_has_no_identity() -> None:
    with FakeService(client_config={"pjwt_auth_enabled": False}) as svc:
        rest = RestClient(base_url=svc.url, api_key="tml-plain-key")
        future = rest.whoami()
        with pytest.raises(RuntimeError, match="this server does not use JWT auth"):
            future.result(timeout=10)
        assert _paths(svc) == ["/api/v1/client/config"]
        assert "tml-plain-key" not in repr(future.exception())


def test_a_provider_token_given_as_the_key_needs_no_request() -> None:
    key = _jwt(sub="tml:user:p", org_id="org9", iss="passport-prod", exp=10**10)
    with FakeService() as svc:
        identity = RestClient(base_url=svc.url, api_key=key).whoami().result(timeout=10)
        assert (identity.user_urn, identity.org_urn, identity.email) == (
            "tml:user:p",
            "tml:organization:org9",
            None,
        )
        assert svc.requests == []


def test_a_token_given_as_the_key_is_sent_as_is_and_names_the_caller(
    jwt_service: FakeService,
) -> None:
    key = _jwt(sub="tml:user:k", org_id="ok", email="k@x.y", exp=10**10, iat=0)
    with ServiceClient(api_key=key, base_url=jwt_service.url, telemetry=False) as service:
        runtime = service.holder
        identity = RestClient(runtime).whoami().result(timeout=10)
    assert (identity.user_urn, identity.org_urn) == ("tml:user:k", "tml:organization:ok")
    assert jwt_service.seen("/api/v1/auth/token") == []  # nothing to exchange
    assert {r.headers["X-API-Key"] for r in jwt_service.requests} == {key}
