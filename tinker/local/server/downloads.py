"""Short-lived download links the server hands out: checkpoint archives (0.5.1), the files of
exported weights and session traces (0.38).

A link is `/api/v1/archives/<token>` with a random token, valid for a bounded time and usable
without the API key (like the signed URLs of the hosted service); the file is produced when
the link is fetched, so a deleted checkpoint's links stop working.
"""

from __future__ import annotations

import secrets
import threading
from collections.abc import Callable

import attrs

from tinker.local.server.http_errors import Gone, NotFound
from tinker.local.server.store import now


@attrs.frozen
class Download:
    """What a link serves: a file name, its media type and how to produce its bytes."""

    file_name: str
    content_type: str
    produce: Callable[[], bytes]


class Downloads:
    """The live links (thread-safe)."""

    def __init__(self, lifetime_seconds: float) -> None:
        self._lifetime = lifetime_seconds
        self._lock = threading.Lock()
        self._links: dict[str, tuple[Download, float]] = {}

    def add(self, download: Download) -> tuple[str, float]:
        """A new token for `download` and its expiry (Unix time)."""
        token = secrets.token_urlsafe(24)
        expires = now() + self._lifetime
        with self._lock:
            self._links[token] = (download, expires)
        return token, expires

    def get(self, token: str) -> Download:
        """The download behind a token; NotFound for an unknown one, Gone for an expired one."""
        with self._lock:
            entry = self._links.get(token)
        if entry is None:
            raise NotFound("Unknown download link.")
        download, expires = entry
        if now() > expires:
            raise Gone("This download link has expired; ask for a new one.")
        return download

    def sweep(self) -> None:
        """Forget expired links."""
        wall = now()
        with self._lock:
            for token in [t for t, (_, expires) in self._links.items() if expires < wall]:
                del self._links[token]
