"""Checkpoints taken elsewhere (0.38): copies (copy_weights), links to the files of exported
weights (external_weights_urls) and session traces (trace_export).

A copy shares the source's bytes where the filesystem allows (hard links, the backend's
copy_checkpoint) and belongs to a new training run that cannot be trained on: the run of a
session made for it (in the destination project), or `<session_id>:train:<model_seq_id>` of
the given session. A copy is made once per idempotency key (a retried call gets the same
path). A trace is a Chrome trace-event JSON file (Perfetto opens it) of what the data
directory knows of the session: its runs, checkpoints and samplers.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable
from typing import Any

import attrs

from tinker import types
from tinker.local.compute.backend import Backend
from tinker.local.server.accounting import CHECKPOINTS, Accounting
from tinker.local.server.downloads import Download, Downloads
from tinker.local.server.http_errors import BadRequest, NotFound
from tinker.local.server.paths import CheckpointRef, parse_tinker_path
from tinker.local.server.reports import utc
from tinker.local.server.sessions import Sessions
from tinker.local.server.store import SessionRow, Store, expiry_time, now

COPY_PREFIX = "copy"


class Exports:
    """Copies, download links of exported files and traces, over one store."""

    def __init__(
        self,
        store: Store,
        backend: Backend,
        sessions: Sessions,
        downloads: Downloads,
        accounting: Accounting,
    ) -> None:
        self._store = store
        self._backend = backend
        self._sessions = sessions
        self._downloads = downloads
        self._accounting = accounting
        self._lock = threading.Lock()
        self._copies: dict[str, str] = {}  # idempotency key -> the copy's path

    def copy(self, body: types.CopyWeightsRequest, idempotency_key: str | None) -> str:
        """copy_weights: the tinker:// path of a new copy of `body.source_path`."""
        with self._lock:
            done = self._copies.get(idempotency_key) if idempotency_key else None
        if done is not None:
            return done
        source = parse_tinker_path(body.source_path)
        if self._store.get_checkpoint(source) is None:
            raise NotFound(f"Checkpoint {body.source_path!r} not found.")
        origin = self._store.get_run(source.run_id)
        if origin is None:
            raise NotFound(f"Training run {source.run_id!r} of {body.source_path!r} not found.")
        expires = expiry_time(body.ttl_seconds)
        session_id, model_seq_id = self._destination(body)
        run = attrs.evolve(
            origin,
            run_id=f"{session_id}:train:{model_seq_id}",
            session_id=session_id,
            model_seq_id=model_seq_id,
            user_metadata=None,
            created_at=now(),
            last_request_at=now(),
        )
        if self._store.get_run(run.run_id) is not None:
            raise BadRequest(f"Training run {run.run_id!r} already exists; copy to another one.")
        target = CheckpointRef(run.run_id, source.kind, source.name)
        files = self._store.checkpoint_path(source)
        self._store.add_run(run)
        self._store.save_files(
            target,
            lambda directory: self._backend.copy_checkpoint(files, directory).size_bytes,
            when=now(),
            expires_at=expires,
        )
        self._accounting.audit(
            CHECKPOINTS,
            "checkpoint_copied",
            tinker_path=target.tinker_path,
            source_path=body.source_path,
        )
        if idempotency_key:
            with self._lock:
                self._copies[idempotency_key] = target.tinker_path
        return target.tinker_path

    def _destination(self, body: types.CopyWeightsRequest) -> tuple[str, int]:
        """The session and model_seq_id of the copy's run."""
        if body.session_id is not None or body.model_seq_id is not None:
            if body.session_id is None or body.model_seq_id is None:
                raise BadRequest("copy_weights takes session_id and model_seq_id together.")
            self._sessions.require(body.session_id)
            return body.session_id, body.model_seq_id
        if not body.destination_project_id:
            raise BadRequest("copy_weights needs destination_project_id (or a session).")
        session_id = f"{COPY_PREFIX}-{uuid.uuid4().hex}"
        when = now()
        self._store.add_session(
            SessionRow(
                session_id,
                when,
                when,
                [],
                None,
                None,
                None,
                display_name=f"copy of {body.source_path}",
                project_id=body.destination_project_id,
            )
        )
        self._store.finish_session(session_id, "success", "holds a copy (copy_weights)", when)
        return session_id, 0

    def file_links(self, ref: CheckpointRef, base_url: str) -> dict[str, Any]:
        """external_weights_urls: a download link for every file of an export."""
        if ref.kind != "external_weights":
            raise BadRequest(
                f"{ref.checkpoint_id!r} is not exported weights: external_weights_urls takes "
                "'external_weights/<name>' checkpoints (save_weights_external)."
            )
        if self._store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        urls: dict[str, str] = {}
        expires = now()
        for name in self._store.checkpoint_listing(ref):
            link = Download(
                name.rsplit("/", 1)[-1], "application/octet-stream", self._reader(ref, name)
            )
            token, expires = self._downloads.add(link)
            urls[name] = f"{base_url}/api/v1/archives/{token}"
        return {"urls": urls, "expires": utc(expires)}

    def _reader(self, ref: CheckpointRef, name: str) -> Callable[[], bytes]:
        return lambda: self._store.checkpoint_file(ref, name)

    def trace(self, session_id: str, base_url: str) -> dict[str, Any]:
        """trace_export: a finished export job with a link to the session's trace."""
        session = self._store.get_session(session_id)
        if session is None:
            raise NotFound(f"Session {session_id!r} not found.")
        body = json.dumps(self._trace_events(session)).encode()
        token, _ = self._downloads.add(
            Download(f"{session_id}.trace.json", "application/json", lambda: body)
        )
        return {"status": "ready", "url": f"{base_url}/api/v1/archives/{token}", "error": None}

    def _trace_events(self, session: SessionRow) -> dict[str, Any]:
        """Instant events (Chrome trace-event format, microseconds) of the session's life."""
        events = [_instant("session created", session.created_at, "session")]
        for run_id in self._store.runs_of_session(session.session_id):
            run = self._store.get_run(run_id)
            if run is None:
                continue
            events.append(_instant(f"training run {run_id} created", run.created_at, "train"))
            rows, _ = self._store.list_checkpoints(run_id, 10_000, 0)
            events.extend(
                _instant(f"checkpoint {row.ref.tinker_path} saved", row.created_at, "train")
                for row in rows
            )
        for sampler_id in self._store.samplers_of_session(session.session_id):
            sampler = self._store.get_sampler(sampler_id)
            if sampler is not None:
                events.append(_instant(f"sampler {sampler_id}", sampler.created_at, "sample"))
        for name, when in (("finished", session.finished_at), ("expired", session.expired_at)):
            if when is not None:
                events.append(_instant(f"session {name}", when, "session"))
        events.sort(key=lambda event: event["ts"])
        return {"traceEvents": events, "displayTimeUnit": "ms"}


def _instant(name: str, when: float, category: str) -> dict[str, Any]:
    return {"name": name, "cat": category, "ph": "i", "s": "g", "ts": int(when * 1e6), "pid": 1}
