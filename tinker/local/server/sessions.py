"""Client sessions: creation, activity tracking (heartbeats and requests) and idle expiry."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tinker.local.server.http_errors import NotFound
from tinker.local.server.store import SessionRow, Store, now

logger = logging.getLogger(__name__)

PERSIST_EVERY_SECONDS = 5.0  # how often a session's last-seen time is written to the store


class Sessions:
    """Which sessions are alive in this process, and when each was last active."""

    def __init__(self, store: Store, idle_seconds: float | None) -> None:
        self._store = store
        self._idle = idle_seconds
        self._lock = threading.Lock()
        self._seen: dict[str, float] = {}  # session -> monotonic time of last activity
        self._saved: dict[str, float] = {}  # session -> wall time last written to the store

    def create(
        self, tags: Sequence[str], user_metadata: Mapping[str, Any] | None, sdk_version: str | None
    ) -> str:
        """Register a new session and return its id (a UUID)."""
        session_id = str(uuid.uuid4())
        when = now()
        metadata = None if user_metadata is None else dict(user_metadata)
        row = SessionRow(session_id, when, when, list(tags), metadata, sdk_version, None)
        self._store.add_session(row)
        with self._lock:
            self._seen[session_id] = time.monotonic()
            self._saved[session_id] = when
        logger.debug("created session %s", session_id)
        return session_id

    def require(self, session_id: str) -> None:
        """Mark the session active; NotFound if it is unknown or has expired.

        A session of an earlier server process on the same data directory is taken up again.
        """
        with self._lock:
            known = session_id in self._seen
        if not known:
            row = self._store.get_session(session_id)
            if row is None:
                raise NotFound(f"Session {session_id!r} not found.")
            if row.expired_at is not None:
                raise NotFound(f"Session {session_id!r} has expired; create a new session.")
        self.touch(session_id)

    def touch(self, session_id: str) -> None:
        """Record activity (the store is updated at most every few seconds)."""
        wall = now()
        with self._lock:
            self._seen[session_id] = time.monotonic()
            persist = wall - self._saved.get(session_id, 0.0) > PERSIST_EVERY_SECONDS
            if persist:
                self._saved[session_id] = wall
        if persist:
            self._store.touch_session(session_id, wall)

    def expire_idle(self) -> list[str]:
        """End the sessions idle for longer than the limit; returns their ids."""
        if self._idle is None:
            return []
        cutoff = time.monotonic() - self._idle
        with self._lock:
            idle = [sid for sid, seen in self._seen.items() if seen < cutoff]
            for sid in idle:
                del self._seen[sid]
                self._saved.pop(sid, None)
        for sid in idle:
            self._store.expire_session(sid, now())
            logger.info("session %s expired after %.0f s without activity", sid, self._idle)
        return idle
