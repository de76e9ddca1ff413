"""The server's own JWTs (HS256) for the 0.38 JWT exchange (`POST /api/v1/auth/token`).

A client authenticated with the API key gets a short-lived token carrying `exp`, `iat`, `sub`,
`org_id`, `email` and `iss`, and may send it as X-API-Key instead of the key. Tokens are signed
with a secret kept in the data directory (created on first use, readable by its owner only),
so they stay valid across restarts of a server on the same directory and nowhere else.
Neither secrets nor tokens are logged.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import os
import pathlib
import secrets
import time
from collections.abc import Callable
from typing import Any

SUBJECT = "tml:user:local"
ORGANIZATION = "local"
ISSUER = "tinker-local"
EMAIL = ""  # the local user has none
_HEADER = {"alg": "HS256", "typ": "JWT"}
_SECRET_BYTES = 32


class InvalidToken(ValueError):
    """A token this server did not sign, or one that has expired; the text says which."""


class TokenAuthority:
    """Issues and verifies this server's tokens."""

    def __init__(
        self,
        secret: bytes,
        *,
        lifetime_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if len(secret) < 16:
            raise ValueError("a token secret needs at least 16 bytes")
        self._secret = secret
        self._lifetime = lifetime_seconds
        self._clock = clock

    def __repr__(self) -> str:
        return f"TokenAuthority(lifetime_seconds={self._lifetime:g})"

    @classmethod
    def for_data_dir(
        cls, data_dir: pathlib.Path, file_name: str, *, lifetime_seconds: float
    ) -> TokenAuthority:
        """The authority of a data directory, its secret created there on first use."""
        return cls(_secret_file(data_dir / file_name), lifetime_seconds=lifetime_seconds)

    def issue(self) -> str:
        """A new token for the server's one user."""
        issued = int(self._clock())
        claims = {
            "sub": SUBJECT,
            "org_id": ORGANIZATION,
            "email": EMAIL,
            "iss": ISSUER,
            "iat": issued,
            "exp": issued + int(self._lifetime),
        }
        signing_input = f"{_encode(_HEADER)}.{_encode(claims)}"
        return f"{signing_input}.{_b64(self._sign(signing_input))}"

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid, unexpired token of this server; InvalidToken otherwise."""
        parts = token.split(".")
        if len(parts) != 3:
            raise InvalidToken("the token is not a JWT")
        signing_input = f"{parts[0]}.{parts[1]}"
        try:
            header = json.loads(_unb64(parts[0]))
            claims = json.loads(_unb64(parts[1]))
            signature = _unb64(parts[2])
        except (ValueError, binascii.Error):
            raise InvalidToken("the token is not a JWT") from None
        if not isinstance(header, dict) or header.get("alg") != "HS256":
            raise InvalidToken("the token is not signed with HS256")
        if not hmac.compare_digest(signature, self._sign(signing_input)):
            raise InvalidToken("the token was not issued by this server")
        expiry = claims.get("exp") if isinstance(claims, dict) else None
        if not isinstance(expiry, (int, float)) or isinstance(expiry, bool):
            raise InvalidToken("the token has no expiry")
        if expiry <= self._clock():
            raise InvalidToken("the token has expired")
        return dict(claims)

    def _sign(self, signing_input: str) -> bytes:
        return hmac.new(self._secret, signing_input.encode("ascii"), hashlib.sha256).digest()


def _secret_file(path: pathlib.Path) -> bytes:
    """The secret in `path`, written (mode 0600, atomically) when the file does not exist."""
    try:
        return bytes.fromhex(path.read_text().strip())
    except FileNotFoundError:
        pass
    except ValueError:
        raise ValueError(f"the token secret file {path} is damaged; delete it") from None
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w") as handle:
        handle.write(secrets.token_bytes(_SECRET_BYTES).hex())
        handle.flush()
        os.fsync(handle.fileno())
    try:
        os.link(partial, path)  # the first writer wins; a racing one reads the winner's
    except FileExistsError:
        pass
    finally:
        partial.unlink()
    return bytes.fromhex(path.read_text().strip())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _encode(value: dict[str, Any]) -> str:
    return _b64(json.dumps(value, separators=(",", ":")).encode("utf-8"))
