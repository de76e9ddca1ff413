"""The JWT exchange of the 0.38 protocol: when the server's config asks for it, requests carry
a short-lived token from `POST /api/v1/auth/token` as X-API-Key instead of the API key.

`JwtCredential` holds the current token: fetched on first use, fetched anew on demand when at
most 60 s of its lifetime remain (read from its `exp` claim, which is decoded without checking
the signature: that is the server's job), and after the server rejects it (`invalidate`).
Fetches are serialised, so concurrent requests share one exchange. Tokens never reach logs,
reprs or exceptions.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

__all__ = ["REFRESH_MARGIN", "JwtCredential", "looks_like_jwt", "token_claims", "token_expiry"]

logger = logging.getLogger(__name__)

# A token with at most this many seconds left is replaced before it is sent.
REFRESH_MARGIN = 60.0


def looks_like_jwt(credential: str) -> bool:
    """JWTs start with a base64url JSON header ("eyJ"); API keys do not."""
    return credential.startswith("eyJ") and credential.count(".") == 2


def token_claims(token: str) -> dict[str, Any]:
    """The claims of a JWT, decoded without checking the signature (that is the server's
    job); {} when `token` is not a JWT."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        return {}
    return claims if isinstance(claims, dict) else {}


def token_expiry(token: str) -> float | None:
    """The `exp` claim (seconds since the epoch) of a JWT, or None when it has none."""
    expiry = token_claims(token).get("exp")
    return float(expiry) if isinstance(expiry, (int, float)) else None


class JwtCredential:
    """The token to send as X-API-Key; `fetch()` performs one exchange and returns a token."""

    def __init__(self, fetch: Callable[[], str], *, clock: Callable[[], float] = time.time):
        self._fetch = fetch
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._expiry: float | None = None

    def token(self) -> str:
        """A token with more than REFRESH_MARGIN seconds left (exchanging when needed)."""
        with self._lock:
            if self._token is None or self._stale():
                self._renew()
            assert self._token is not None
            return self._token

    def invalidate(self, rejected: str) -> None:
        """The server refused `rejected`: the next `token()` exchanges again (unless a
        concurrent request already did)."""
        with self._lock:
            if self._token == rejected:
                self._token = None

    def _stale(self) -> bool:
        return self._expiry is not None and self._expiry - self._clock() <= REFRESH_MARGIN

    def _renew(self) -> None:
        token = self._fetch()
        if not isinstance(token, str) or not token:
            raise ValueError("auth/token answered without a token")
        self._token, self._expiry = token, token_expiry(token)
        logger.debug("fetched a new access token (expires at %s)", self._expiry)

    def __repr__(self) -> str:
        return f"<JwtCredential {'set' if self._token else 'unset'}>"
