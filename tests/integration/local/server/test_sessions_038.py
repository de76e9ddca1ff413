"""Sessions of the 0.38 protocol: the client's finish (first reason wins, 410 afterwards) and
JWT auth with the server's own tokens."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import stat
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tinker.local import LocalServer, serve
from tinker.local.server import settings
from tinker.local.server.tokens import TokenAuthority

from .conftest import FAST
from .fake_backend import FakeBackend
from .wire_client import WireClient, fwdbwd

KEY = "tml-jwt-tests"


def test_finish_ends_the_session_with_the_first_reason(
    client: WireClient, server: LocalServer
) -> None:
    session_id = client.session()
    model_id = client.model(session_id)
    finish = {"reason": {"type": "errored"}, "detail": "ValueError: bad batch"}
    assert client.ok(f"sessions/{session_id}/finish", finish) == {}
    later = {"reason": {"type": "success"}, "detail": None}
    assert client.ok(f"sessions/{session_id}/finish", later) == {}  # changes nothing
    row = server.store.get_session(session_id)
    assert row is not None
    assert (row.finish_reason, row.finish_detail) == ("errored", "ValueError: bad batch")
    heartbeat = client.post(
        "session_heartbeat", {"session_id": session_id, "type": "session_heartbeat"}
    )
    assert heartbeat.status_code == 410
    assert heartbeat.json()["detail"] == (
        f"Session {session_id!r} was finished by its client (errored: ValueError: bad batch); "
        "create a new session."
    )
    for endpoint, body in (
        ("forward_backward", fwdbwd(model_id, 1)),
        ("create_model", {"session_id": session_id, "model_seq_id": 1, "base_model": "fake/tiny"}),
        (
            "create_sampling_session",
            {"session_id": session_id, "sampling_session_seq_id": 0, "base_model": "fake/tiny"},
        ),
    ):
        refused = client.post(endpoint, body)
        assert (
            refused.status_code == 410 and "was finished by its client" in refused.json()["detail"]
        ), endpoint
    assert client.get(f"training_runs/{model_id}").status_code == 200  # its records stay
    unknown = client.post("sessions/nope/finish", later)
    assert unknown.status_code == 404
    bad = client.post(f"sessions/{client.session()}/finish", {"reason": {"type": "crashed"}})
    assert bad.status_code == 422


@pytest.fixture
def jwt_server(tmp_path: pathlib.Path) -> Iterator[LocalServer]:
    with serve(
        data_dir=tmp_path / "jwt",
        backend=FakeBackend(),
        config=FAST,
        api_key=KEY,
        protocol="both,jwt_auth=on",
    ) as server:
        yield server


def _claims(token: str) -> Any:
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def test_jwt_auth_issues_and_accepts_the_servers_own_tokens(
    jwt_server: object, tmp_path: pathlib.Path
) -> None:
    url = jwt_server.url
    with WireClient(url, {"X-API-Key": KEY}) as with_key:
        assert with_key.ok("client/config", {"sdk_version": "0.38.0"})["pjwt_auth_enabled"] is True
        token = with_key.ok("auth/token", {})["jwt"]
    claims = _claims(token)
    assert set(claims) == {"sub", "org_id", "email", "iss", "iat", "exp"}
    assert claims["exp"] == claims["iat"] + settings.JWT_LIFETIME_SECONDS
    assert (claims["sub"], claims["org_id"], claims["iss"]) == (
        "tml:user:local",
        "local",
        "tinker-local",
    )
    with WireClient(url, {"X-API-Key": token}) as with_token:
        assert with_token.session()
    secret = tmp_path / "jwt" / settings.JWT_SECRET_FILE
    assert stat.S_IMODE(os.stat(secret).st_mode) == 0o600
    expired = TokenAuthority(bytes.fromhex(secret.read_text()), lifetime_seconds=-1).issue()
    forged = TokenAuthority(b"another server's secret", lifetime_seconds=60).issue()
    for bad, why in (
        (expired, "the token has expired"),
        (forged, "the token was not issued by this server"),
    ):
        answer = requests.post(
            f"{url}/api/v1/create_session", json={}, headers={"X-API-Key": bad}, timeout=10
        )
        assert answer.status_code == 401
        assert (
            answer.headers["WWW-Authenticate"]
            == f'Bearer error="invalid_token", error_description="{why}"'
        )
        assert why in answer.json()["detail"]
    plain = requests.post(
        f"{url}/api/v1/create_session", json={}, headers={"X-API-Key": "tml-wrong"}, timeout=10
    )
    assert plain.status_code == 401 and "WWW-Authenticate" not in plain.headers


def test_tokens_outlive_a_restart_on_the_same_data_directory(tmp_path: pathlib.Path) -> None:
    def jwt_serve() -> LocalServer:
        return serve(
            data_dir=tmp_path,
            backend=FakeBackend(),
            config=FAST,
            api_key=KEY,
            protocol="both,jwt_auth=on",
        )

    with jwt_serve() as first, WireClient(first.url, {"X-API-Key": KEY}) as client:
        token = client.ok("auth/token", {})["jwt"]
    with jwt_serve() as second, WireClient(second.url, {"X-API-Key": token}) as client:
        assert client.session()


def test_jwt_auth_needs_an_api_key_and_is_off_by_default(
    tmp_path: pathlib.Path, client: WireClient
) -> None:
    with pytest.raises(ValueError, match="JWT auth needs an API key"):
        serve(
            data_dir=tmp_path / "x", backend=FakeBackend(), config=FAST, protocol="both,jwt_auth=on"
        )
    assert client.post("auth/token", {}).status_code == 404
