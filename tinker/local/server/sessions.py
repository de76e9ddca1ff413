"""Client sessions: creation, activity tracking (heartbeats and requests), idle expiry and the
client's own finish (`sessions/{id}/finish`).

A session ends once, by expiry or by its client's finish; afterwards every operation on it is
refused with 410 Gone saying how it ended (heartbeats of 0.38 clients stop on 410). A finish
records the first reason given; a repeated finish changes nothing.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from tinker.local.server.http_errors import Gone, NotFound
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
        self,
        tags: Sequence[str],
        user_metadata: Mapping[str, Any] | None,
        sdk_version: str | None,
        *,
        display_name: str | None = None,
        project_id: str | None = None,
    ) -> str:
        """Register a new session and return its id (a UUID)."""
        session_id = str(uuid.uuid4())
        when = now()
        metadata = None if user_metadata is None else dict(user_metadata)
        row = SessionRow(
            session_id,
            when,
            when,
            list(tags),
            metadata,
            sdk_version,
            None,
            display_name=display_name,
            project_id=project_id,
        )
        self._store.add_session(row)
        with self._lock:
            self._seen[session_id] = time.monotonic()
            self._saved[session_id] = when
        logger.debug("created session %s", session_id)
        return session_id

    def require(self, session_id: str) -> None:
        """Mark the session active; NotFound if it is unknown, Gone if it has ended.

        A session of an earlier server process on the same data directory is taken up again.
        """
        with self._lock:
            known = session_id in self._seen
        if not known:
            row = self._store.get_session(session_id)
            if row is None:
                raise NotFound(f"Session {session_id!r} not found.")
            ended = _ending(row)
            if ended is not None:
                raise Gone(f"Session {session_id!r} {ended}; create a new session.")
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

    def finish(self, session_id: str, reason: str, detail: str | None) -> bool:
        """End a session at its client's request; False when it had already finished (the
        first reason stays). NotFound for an unknown session."""
        if self._store.get_session(session_id) is None:
            raise NotFound(f"Session {session_id!r} not found.")
        first = self._store.finish_session(session_id, reason, detail, now())
        with self._lock:
            self._seen.pop(session_id, None)
            self._saved.pop(session_id, None)
        if first:
            logger.info("session %s finished by its client (%s)", session_id, reason)
        return first

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


def _ending(row: SessionRow) -> str | None:
    """How a session ended, as words for an error message; None while it is active."""
    if row.finished_at is not None:
        detail = f": {row.finish_detail}" if row.finish_detail else ""
        return f"was finished by its client ({row.finish_reason}{detail})"
    if row.expired_at is not None:
        return "has expired (no heartbeat or request for too long)"
    return None
