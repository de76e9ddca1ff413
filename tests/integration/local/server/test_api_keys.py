"""`GET`/`DELETE /api/v1/auth/apikey/me`, the 0.38 CLI's key endpoints: the documented record
with local values for the accepted key, 401 for a wrong, missing or token credential, and a
revocation that is acknowledged but leaves the server's fixed key working."""

from __future__ import annotations

import pytest
import requests

from tinker.local import LocalServer
from tinker.testing.plugin import ServerFactory

from .conftest import FAST
from .fake_backend import FakeBackend

KEY = "tml-api-key-tests"
RECORD = {
    "key_id": 1,
    "name": "tinker-local",
    "note": "the API key of this tinker.local server",
    "details": {"org_details": {"name": "local"}, "user_details": {"email": ""}},
}


def _me(server: LocalServer, method: str = "GET", key: str | None = KEY) -> requests.Response:
    headers = {} if key is None else {"X-API-Key": key}
    return requests.request(
        method, f"{server.url}/api/v1/auth/apikey/me", headers=headers, timeout=10
    )


@pytest.fixture
def keyed(tinker_server_factory: ServerFactory) -> LocalServer:
    return tinker_server_factory(backend=FakeBackend(), config=FAST, api_key=KEY)


def test_the_accepted_key_is_described_with_local_values(keyed: LocalServer) -> None:
    answer = _me(keyed)
    assert answer.status_code == 200
    assert answer.json() == RECORD


@pytest.mark.parametrize("method", ["GET", "DELETE"])
def test_a_wrong_or_missing_key_is_refused(keyed: LocalServer, method: str) -> None:
    for key in ("tml-wrong", None):
        answer = _me(keyed, method, key)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "Invalid or missing API key (X-API-Key header)."}


def test_revoking_is_acknowledged_and_the_fixed_key_keeps_working(keyed: LocalServer) -> None:
    revoked = _me(keyed, "DELETE")
    assert (revoked.status_code, revoked.content) == (204, b"")
    assert _me(keyed).json() == RECORD


def test_a_server_without_a_key_describes_any_key_but_needs_one(
    tinker_server_factory: ServerFactory,
) -> None:
    server = tinker_server_factory(backend=FakeBackend(), config=FAST)
    assert _me(server, key="tml-anything").json() == RECORD
    missing = _me(server, key=None)
    assert missing.status_code == 401
    assert missing.json() == {"detail": "Send the API key in the X-API-Key header."}


def test_a_token_is_not_an_api_key(tinker_server_factory: ServerFactory) -> None:
    server = tinker_server_factory(
        backend=FakeBackend(), config=FAST, api_key=KEY, protocol="both,jwt_auth=on"
    )
    token = requests.post(
        f"{server.url}/api/v1/auth/token", json={}, headers={"X-API-Key": KEY}, timeout=10
    ).json()["jwt"]
    for method in ("GET", "DELETE"):
        answer = _me(server, method, token)
        assert answer.status_code == 401
        assert answer.json() == {"detail": "The X-API-Key header holds a token, not an API key."}
