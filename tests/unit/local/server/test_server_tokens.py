"""The server's own JWTs: HS256 round trip, expiry, foreign and malformed tokens, the secret
file of the data directory."""

from __future__ import annotations

import base64
import json
import os
import pathlib
import stat

import pytest

from tinker._auth import looks_like_jwt
from tinker.local.server.tokens import InvalidToken, TokenAuthority

SECRET = b"0123456789abcdef0123456789abcdef"


def _authority(now: float = 1000.0, lifetime: float = 60.0) -> TokenAuthority:
    return TokenAuthority(SECRET, lifetime_seconds=lifetime, clock=lambda: now)


def _segment(token: str, index: int) -> dict[str, object]:
    part = token.split(".")[index]
    decoded: dict[str, object] = json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))
    return decoded


def test_tokens_carry_the_claims_clients_read_and_verify_until_they_expire() -> None:
    token = _authority().issue()
    assert looks_like_jwt(token) and not looks_like_jwt("tml-key")
    assert _segment(token, 0) == {"alg": "HS256", "typ": "JWT"}
    claims = _authority(now=1059.0).verify(token)
    assert claims == {
        "sub": "tml:user:local",
        "org_id": "local",
        "email": "",
        "iss": "tinker-local",
        "iat": 1000,
        "exp": 1060,
    }
    with pytest.raises(InvalidToken, match="the token has expired"):
        _authority(now=1060.0).verify(token)


def test_foreign_tampered_and_malformed_tokens_are_refused() -> None:
    token = _authority().issue()
    header, payload, signature = token.split(".")
    unsigned = base64.urlsafe_b64encode(b'{"alg":"none"}').decode().rstrip("=")
    forged_claims = base64.urlsafe_b64encode(json.dumps({"exp": 10**10}).encode()).rstrip(b"=")
    cases = {
        TokenAuthority(b"x" * 32, lifetime_seconds=60).issue(): "not issued by this server",
        f"{header}.{forged_claims.decode()}.{signature}": "not issued by this server",
        "a.b": "not a JWT",
        "eyJ!.eyJ!.!!": "not a JWT",
        f"{unsigned}.{payload}.": "not signed with HS256",
    }
    for bad, reason in cases.items():
        with pytest.raises(InvalidToken, match=reason):
            _authority().verify(bad)


def test_the_secret_lives_in_the_data_directory_readable_by_its_owner(
    tmp_path: pathlib.Path,
) -> None:
    first = TokenAuthority.for_data_dir(tmp_path, "jwt-secret", lifetime_seconds=60)
    token = first.issue()
    path = tmp_path / "jwt-secret"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    again = TokenAuthority.for_data_dir(tmp_path, "jwt-secret", lifetime_seconds=60)
    assert again.verify(token)["sub"] == "tml:user:local"
    assert path.read_text().strip() not in repr(again)
    path.write_text("not hex")
    with pytest.raises(ValueError, match="is damaged; delete it"):
        TokenAuthority.for_data_dir(tmp_path, "jwt-secret", lifetime_seconds=60)
