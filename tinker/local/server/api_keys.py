"""The local server's answers to `auth/apikey/me`, the endpoint the 0.38 CLI's `tinker auth
login` checks a key with and `logout` revokes a generated key at.

The server has one user and at most one API key, fixed when it starts (None: any key is
accepted), so the record is built from local values, the same for every accepted key, and a
revocation cannot disable the key: it is acknowledged and the key keeps working.
"""

from __future__ import annotations

from typing import Any

from tinker._auth import looks_like_jwt
from tinker.local.server.http import API_KEY_HEADER, Request
from tinker.local.server.http_errors import Unauthorized
from tinker.local.server.tokens import EMAIL, ORGANIZATION

__all__ = ["KEY_ID", "KEY_NAME", "KEY_NOTE", "key_record", "require_api_key"]

KEY_ID = 1
KEY_NAME = "tinker-local"
KEY_NOTE = "the API key of this tinker.local server"


def require_api_key(request: Request) -> None:
    """Unauthorized unless the request presents an API key (the transport has already refused
    a wrong one): a missing header, or a token (JWT) in its place, has no key record."""
    given = request.headers.get(API_KEY_HEADER.lower())
    if not given:
        raise Unauthorized(f"Send the API key in the {API_KEY_HEADER} header.")
    if looks_like_jwt(given):
        raise Unauthorized(f"The {API_KEY_HEADER} header holds a token, not an API key.")


def key_record() -> dict[str, Any]:
    """The key's record: `{"key_id", "name", "note", "details": {"org_details": {"name"},
    "user_details": {"email"}}}`, with the local user's values (no email, as in its tokens)."""
    return {
        "key_id": KEY_ID,
        "name": KEY_NAME,
        "note": KEY_NOTE,
        "details": {"org_details": {"name": ORGANIZATION}, "user_details": {"email": EMAIL}},
    }
