"""Persistent state of the local server: SQLite metadata and the checkpoint files beside it.

One connection guarded by a lock (WAL journal, synchronous=FULL), in
`<data_dir>/tinker-local.sqlite3`; one Store per data directory (server.data_lock). A
checkpoint's row names the version directory holding its files (server.checkpoint_files), and
the row is the switch: a save writes a new version durably, commits the row naming it, then
removes the version it replaced; a delete commits the row's removal, then removes its version.
A crash at any step leaves each row naming a complete version; the directories no row names
are removed when the store opens again. Everything here survives a restart.
"""

from __future__ import annotations

import json
import logging
import pathlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, TypeVar

import attrs

from tinker.local.server import crash_points
from tinker.local.server.checkpoint_files import CheckpointData, CheckpointFiles
from tinker.local.server.data_lock import DataDirectoryLock
from tinker.local.server.http_errors import BadRequest, NotFound
from tinker.local.server.paths import CheckpointRef

logger = logging.getLogger(__name__)

T = TypeVar("T")

DB_FILE = "tinker-local.sqlite3"
SCHEMA_VERSION = 3

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sessions (
    session_id TEXT PRIMARY KEY,
    created_at REAL NOT NULL,
    last_seen_at REAL NOT NULL,
    tags TEXT NOT NULL,
    user_metadata TEXT,
    sdk_version TEXT,
    expired_at REAL,
    display_name TEXT,
    project_id TEXT,
    finished_at REAL,
    finish_reason TEXT,
    finish_detail TEXT
);
CREATE TABLE IF NOT EXISTS training_runs (
    run_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    model_seq_id INTEGER NOT NULL,
    base_model TEXT NOT NULL,
    lora_rank INTEGER NOT NULL,
    seed INTEGER,
    train_mlp INTEGER NOT NULL,
    train_attn INTEGER NOT NULL,
    train_unembed INTEGER NOT NULL,
    user_metadata TEXT,
    created_at REAL NOT NULL,
    last_request_at REAL NOT NULL,
    corrupted INTEGER NOT NULL DEFAULT 0,
    optimizer_config TEXT
);
CREATE INDEX IF NOT EXISTS training_runs_session ON training_runs(session_id);
CREATE TABLE IF NOT EXISTS checkpoints (
    run_id TEXT NOT NULL,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    created_at REAL NOT NULL,
    size_bytes INTEGER,
    public INTEGER NOT NULL DEFAULT 0,
    expires_at REAL,
    directory TEXT NOT NULL,
    user_metadata TEXT,
    PRIMARY KEY (run_id, kind, name)
);
CREATE INDEX IF NOT EXISTS checkpoints_time ON checkpoints(created_at);
CREATE TABLE IF NOT EXISTS samplers (
    sampler_id TEXT PRIMARY KEY,
    session_id TEXT NOT NULL,
    base_model TEXT NOT NULL,
    model_path TEXT,
    source TEXT NOT NULL,
    created_at REAL NOT NULL,
    clients INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS samplers_session ON samplers(session_id);
CREATE TABLE IF NOT EXISTS usage (
    bucket_start REAL NOT NULL,
    session_id TEXT NOT NULL,
    base_model TEXT NOT NULL,
    kind TEXT NOT NULL,
    cached INTEGER NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (bucket_start, session_id, base_model, kind, cached)
);
CREATE TABLE IF NOT EXISTS audit (
    timestamp REAL NOT NULL,
    category TEXT NOT NULL,
    event TEXT NOT NULL,
    details TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS audit_time ON audit(timestamp);
"""


# Columns added after version 1, in order (an older table gets them at its end).
_ADDED_COLUMNS = (
    ("checkpoints", "directory", "TEXT"),
    ("sessions", "display_name", "TEXT"),
    ("sessions", "project_id", "TEXT"),
    ("sessions", "finished_at", "REAL"),
    ("sessions", "finish_reason", "TEXT"),
    ("sessions", "finish_detail", "TEXT"),
    ("training_runs", "optimizer_config", "TEXT"),
    ("checkpoints", "user_metadata", "TEXT"),
    ("samplers", "clients", "INTEGER NOT NULL DEFAULT 0"),
)


@attrs.frozen
class SessionRow:
    """A client session (create_session), when it was last seen, and how it ended: expired
    (no activity) or finished by its client (the first reason given, with its detail)."""

    session_id: str
    created_at: float
    last_seen_at: float
    tags: list[str]
    user_metadata: dict[str, Any] | None
    sdk_version: str | None
    expired_at: float | None
    display_name: str | None = None
    project_id: str | None = None
    finished_at: float | None = None
    finish_reason: str | None = None
    finish_detail: str | None = None


@attrs.frozen
class RunRow:
    """A training run (create_model): its base model, LoRA settings and metadata."""

    run_id: str
    session_id: str
    model_seq_id: int
    base_model: str
    lora_rank: int
    seed: int | None
    train_mlp: bool
    train_attn: bool
    train_unembed: bool
    user_metadata: dict[str, Any] | None
    created_at: float
    last_request_at: float
    corrupted: bool = False
    optimizer_config: dict[str, Any] | None = None  # None: AdamW (runs before optimizers)


@attrs.frozen
class CheckpointRow:
    """A saved checkpoint: which one, when, how big, published or not, expiry, and the version
    directory (below checkpoints/) holding its files."""

    ref: CheckpointRef
    created_at: float
    size_bytes: int | None
    public: bool
    expires_at: float | None
    directory: str
    user_metadata: dict[str, str] | None = None


@attrs.frozen
class UsageRow:
    """What one session used of one base model in one hour: `kind` is training,
    sampling_prefill (`cached` or not), sampling_sample (tokens) or checkpoint (a count)."""

    bucket_start: float
    session_id: str
    base_model: str
    kind: str
    cached: bool
    amount: int


@attrs.frozen
class AuditRow:
    """An event of the audit log: its category (checkpoints, projects), name and details."""

    timestamp: float
    category: str
    event: str
    details: dict[str, Any]


@attrs.frozen
class SamplerRow:
    """A sampling session: base model, optional checkpoint path, how it was made."""

    sampler_id: str
    session_id: str
    base_model: str
    model_path: str | None
    source: str  # "base", "checkpoint" or "ephemeral"
    created_at: float
    clients: int = 0  # copies that joined (join_sampling_session), numbered from 1


class Store:
    """SQLite metadata plus the checkpoint files of one data directory (thread-safe)."""

    def __init__(self, data_dir: pathlib.Path) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        self.data_dir = data_dir
        self.lock = DataDirectoryLock(data_dir)
        try:
            self.files = CheckpointFiles(data_dir)
            self._lock = threading.Lock()
            self._db = sqlite3.connect(
                data_dir / DB_FILE, check_same_thread=False, isolation_level=None, timeout=30.0
            )
            self._db.execute("PRAGMA journal_mode=WAL")
            # FULL: a committed row (an acknowledged checkpoint) is on disk, even after power loss.
            self._db.execute("PRAGMA synchronous=FULL")
            self._migrate()
            self._recover()
        except BaseException:
            if hasattr(self, "_db"):
                self._db.close()
            self.lock.release()
            raise

    def close(self) -> None:
        """Close the database connection and let the data directory go (idempotent)."""
        with self._lock:
            self._db.close()
        self.lock.release()

    def _migrate(self) -> None:
        """Create the schema, or bring an older database up to date: version 1 rows name no
        version directory (their files are at checkpoints/<run, ':' as '_'>/<kind>/<name>),
        and the columns of version 3 (how sessions ended, optimizers, checkpoint metadata,
        sampler copies) are added empty."""
        for table, column, declaration in _ADDED_COLUMNS:
            columns = {row[1] for row in self._db.execute(f"PRAGMA table_info({table})")}
            if columns and column not in columns:
                self._db.execute(f"ALTER TABLE {table} ADD COLUMN {column} {declaration}")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "UPDATE checkpoints SET directory = "
            "replace(run_id, ':', '_') || '/' || kind || '/' || name WHERE directory IS NULL"
        )
        self._db.execute(f"PRAGMA user_version={SCHEMA_VERSION}")

    def _recover(self) -> None:
        """Remove what interrupted saves and deletes left behind; report rows without files."""
        rows = [_checkpoint(row) for row in self._query("SELECT * FROM checkpoints")]
        removed = self.files.recover({row.directory for row in rows})
        if removed:
            logger.info(
                "removed %d directories of interrupted checkpoint saves or deletes", len(removed)
            )
        for row in rows:
            if not self.files.complete(row.directory):
                path, directory = row.ref.tinker_path, row.directory
                logger.warning("the files of checkpoint %s are missing (%s)", path, directory)

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                yield self._db
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")

    def _query(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            return list(self._db.execute(sql, args).fetchall())

    # sessions

    def add_session(self, row: SessionRow) -> None:
        """Record a new session."""

        with self._tx() as db:
            db.execute(
                "INSERT INTO sessions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.session_id,
                    row.created_at,
                    row.last_seen_at,
                    json.dumps(row.tags),
                    _dump(row.user_metadata),
                    row.sdk_version,
                    row.expired_at,
                    row.display_name,
                    row.project_id,
                    row.finished_at,
                    row.finish_reason,
                    row.finish_detail,
                ),
            )

    def touch_session(self, session_id: str, when: float) -> None:
        """Record activity of a session."""

        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET last_seen_at = ? WHERE session_id = ?", (when, session_id)
            )

    def expire_session(self, session_id: str, when: float) -> None:
        """Mark a session as ended (kept for listing)."""

        with self._tx() as db:
            db.execute(
                "UPDATE sessions SET expired_at = ? WHERE session_id = ? AND expired_at IS NULL",
                (when, session_id),
            )

    def finish_session(self, session_id: str, reason: str, detail: str | None, when: float) -> bool:
        """Record how a session ended; False when it had already finished (the first reason
        stays)."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE sessions SET finished_at = ?, finish_reason = ?, finish_detail = ? "
                "WHERE session_id = ? AND finished_at IS NULL",
                (when, reason, detail, session_id),
            )
            return cursor.rowcount > 0

    def get_session(self, session_id: str) -> SessionRow | None:
        """The session, or None if unknown."""

        rows = self._query("SELECT * FROM sessions WHERE session_id = ?", (session_id,))
        return _session(rows[0]) if rows else None

    def list_sessions(self, limit: int, offset: int) -> list[SessionRow]:
        """A page of sessions, newest first."""

        rows = self._query(
            "SELECT * FROM sessions ORDER BY created_at DESC, session_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        return [_session(row) for row in rows]

    # training runs

    def add_run(self, row: RunRow) -> None:
        """Record a training run (replacing a re-created one of the same id)."""

        with self._tx() as db:
            db.execute(
                "INSERT OR REPLACE INTO training_runs VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    row.run_id,
                    row.session_id,
                    row.model_seq_id,
                    row.base_model,
                    row.lora_rank,
                    row.seed,
                    int(row.train_mlp),
                    int(row.train_attn),
                    int(row.train_unembed),
                    _dump(row.user_metadata),
                    row.created_at,
                    row.last_request_at,
                    int(row.corrupted),
                    _dump(row.optimizer_config),
                ),
            )

    def touch_run(self, run_id: str, when: float) -> None:
        """Record the time of a run's latest request."""

        with self._tx() as db:
            db.execute(
                "UPDATE training_runs SET last_request_at = ? WHERE run_id = ?", (when, run_id)
            )

    def get_run(self, run_id: str) -> RunRow | None:
        """The training run, or None if unknown."""

        rows = self._query("SELECT * FROM training_runs WHERE run_id = ?", (run_id,))
        return _run(rows[0]) if rows else None

    def list_runs(self, limit: int, offset: int) -> tuple[list[RunRow], int]:
        """A page of training runs, newest first, and the total count."""

        rows = self._query(
            "SELECT * FROM training_runs ORDER BY created_at DESC, run_id LIMIT ? OFFSET ?",
            (limit, offset),
        )
        total = self._query("SELECT COUNT(*) FROM training_runs")[0][0]
        return [_run(row) for row in rows], int(total)

    def runs_of_session(self, session_id: str) -> list[str]:
        """Ids of a session's training runs in creation order."""

        rows = self._query(
            "SELECT run_id FROM training_runs WHERE session_id = ? ORDER BY model_seq_id",
            (session_id,),
        )
        return [str(row[0]) for row in rows]

    # checkpoints

    def save_checkpoint(
        self,
        ref: CheckpointRef,
        adapter: Mapping[str, Any],
        adapter_config: Mapping[str, Any],
        optimizer: Mapping[str, Any] | None,
        *,
        when: float,
        expires_at: float | None,
        user_metadata: Mapping[str, str] | None = None,
    ) -> CheckpointRow:
        """Write a new version durably, commit the row naming it, remove the one it replaced."""
        directory, size = self.files.create(ref, adapter, adapter_config, optimizer)
        return self._commit(ref, directory, size, when, expires_at, user_metadata)

    def save_files(
        self,
        ref: CheckpointRef,
        write: Callable[[pathlib.Path], int],
        *,
        when: float,
        expires_at: float | None,
    ) -> CheckpointRow:
        """As save_checkpoint, for a version whose files `write` makes (exports, copies: see
        CheckpointFiles.create_with)."""
        directory, size = self.files.create_with(ref, write)
        return self._commit(ref, directory, size, when, expires_at, None)

    def _commit(
        self,
        ref: CheckpointRef,
        directory: str,
        size: int,
        when: float,
        expires_at: float | None,
        user_metadata: Mapping[str, str] | None,
    ) -> CheckpointRow:
        try:
            with self._tx() as db:
                replaced = db.execute(
                    "SELECT directory FROM checkpoints WHERE run_id = ? AND kind = ? AND name = ?",
                    (ref.run_id, ref.kind, ref.name),
                ).fetchone()
                db.execute(
                    "INSERT OR REPLACE INTO checkpoints VALUES (?, ?, ?, ?, ?, 0, ?, ?, ?)",
                    (
                        ref.run_id,
                        ref.kind,
                        ref.name,
                        when,
                        size,
                        expires_at,
                        directory,
                        _dump(user_metadata),
                    ),
                )
        except BaseException:
            self.files.remove(directory)  # no row names it: the save did not happen
            raise
        crash_points.reached("save.committed")
        if replaced is not None:
            self.files.remove(replaced[0])
        crash_points.reached("save.cleaned")
        metadata = None if user_metadata is None else dict(user_metadata)
        return CheckpointRow(ref, when, size, False, expires_at, directory, metadata)

    def get_checkpoint(self, ref: CheckpointRef) -> CheckpointRow | None:
        """The checkpoint's record, or None if unknown."""

        rows = self._query(
            "SELECT * FROM checkpoints WHERE run_id = ? AND kind = ? AND name = ?",
            (ref.run_id, ref.kind, ref.name),
        )
        return _checkpoint(rows[0]) if rows else None

    def read_checkpoint(self, ref: CheckpointRef, *, with_optimizer: bool) -> CheckpointData:
        """A checkpoint's tensors and config; NotFound if there is no such checkpoint."""
        return self._with_files(
            ref, lambda row: self.files.read(row.directory, ref, with_optimizer=with_optimizer)
        )

    def checkpoint_has_optimizer(self, ref: CheckpointRef) -> bool:
        """True when the checkpoint carries optimizer state."""
        return self._with_files(ref, lambda row: self.files.has_optimizer(row.directory, ref))

    def checkpoint_path(self, ref: CheckpointRef) -> pathlib.Path:
        """The directory of a checkpoint's current version (to copy it)."""
        return self._with_files(ref, lambda row: self.files.path_of(row.directory, ref))

    def checkpoint_listing(self, ref: CheckpointRef) -> dict[str, int]:
        """A checkpoint's files (relative name -> bytes)."""
        return self._with_files(ref, lambda row: self.files.listing(row.directory, ref))

    def checkpoint_file(self, ref: CheckpointRef, name: str) -> bytes:
        """One file of a checkpoint, by its name in checkpoint_listing."""
        return self._with_files(ref, lambda row: self.files.read_file(row.directory, ref, name))

    def checkpoint_archive(self, ref: CheckpointRef) -> bytes:
        """The checkpoint's tar archive (server.checkpoint_files)."""
        return self._with_files(ref, lambda row: self.files.archive(row.directory, ref))

    def _with_files(self, ref: CheckpointRef, use: Callable[[CheckpointRow], T]) -> T:
        """`use(row)`, again with the new row when a save replaced the version meanwhile."""
        while True:
            row = self.get_checkpoint(ref)
            if row is None:
                raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
            try:
                return use(row)
            except NotFound:
                again = self.get_checkpoint(ref)
                if again is None or again.directory == row.directory:
                    raise

    def list_checkpoints(
        self, run_id: str | None, limit: int, offset: int
    ) -> tuple[list[CheckpointRow], int]:
        """Checkpoints of one run (or all runs when run_id is None), newest first."""
        where, args = ("WHERE run_id = ?", (run_id,)) if run_id is not None else ("", ())
        rows = self._query(
            f"SELECT * FROM checkpoints {where} ORDER BY created_at DESC, run_id, kind, name "
            "LIMIT ? OFFSET ?",
            (*args, limit, offset),
        )
        total = self._query(f"SELECT COUNT(*) FROM checkpoints {where}", args)[0][0]
        return [_checkpoint(row) for row in rows], int(total)

    def latest_checkpoint(self, run_id: str, kind: str) -> CheckpointRow | None:
        """A run's newest checkpoint of one kind, or None."""

        rows = self._query(
            "SELECT * FROM checkpoints WHERE run_id = ? AND kind = ? "
            "ORDER BY created_at DESC LIMIT 1",
            (run_id, kind),
        )
        return _checkpoint(rows[0]) if rows else None

    def set_public(self, ref: CheckpointRef, public: bool) -> bool:
        """Set the publish flag; False when the checkpoint does not exist."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE checkpoints SET public = ? WHERE run_id = ? AND kind = ? AND name = ?",
                (int(public), ref.run_id, ref.kind, ref.name),
            )
            return cursor.rowcount > 0

    def set_expiry(self, ref: CheckpointRef, expires_at: float | None) -> bool:
        """Set or clear a checkpoint's expiry time; False when it does not exist."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE checkpoints SET expires_at = ? WHERE run_id = ? AND kind = ? AND name = ?",
                (expires_at, ref.run_id, ref.kind, ref.name),
            )
            return cursor.rowcount > 0

    def delete_checkpoint(self, ref: CheckpointRef) -> bool:
        """Remove the row, then the version it named; False when the checkpoint does not exist
        (and then nothing is removed)."""
        with self._tx() as db:
            row = db.execute(
                "SELECT directory FROM checkpoints WHERE run_id = ? AND kind = ? AND name = ?",
                (ref.run_id, ref.kind, ref.name),
            ).fetchone()
            if row is None:
                return False
            db.execute(
                "DELETE FROM checkpoints WHERE run_id = ? AND kind = ? AND name = ?",
                (ref.run_id, ref.kind, ref.name),
            )
        crash_points.reached("delete.committed")
        self.files.remove(row[0])
        crash_points.reached("delete.cleaned")
        return True

    def expired_checkpoints(self, now: float) -> list[CheckpointRef]:
        """Checkpoints whose expiry time has passed."""

        rows = self._query(
            "SELECT * FROM checkpoints WHERE expires_at IS NOT NULL AND expires_at <= ?", (now,)
        )
        return [_checkpoint(row).ref for row in rows]

    # samplers

    def add_sampler(self, row: SamplerRow) -> None:
        """Record a sampling session (a repeated id is ignored)."""

        with self._tx() as db:
            db.execute(
                "INSERT OR IGNORE INTO samplers VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    row.sampler_id,
                    row.session_id,
                    row.base_model,
                    row.model_path,
                    row.source,
                    row.created_at,
                    row.clients,
                ),
            )

    def get_sampler(self, sampler_id: str) -> SamplerRow | None:
        """The sampler, or None if unknown."""

        rows = self._query("SELECT * FROM samplers WHERE sampler_id = ?", (sampler_id,))
        return SamplerRow(*rows[0]) if rows else None

    def join_sampler(self, sampler_id: str) -> int | None:
        """Number a new copy of a sampling client (1, 2, ...); None for an unknown sampler."""
        with self._tx() as db:
            db.execute(
                "UPDATE samplers SET clients = clients + 1 WHERE sampler_id = ?", (sampler_id,)
            )
            row = db.execute(
                "SELECT clients FROM samplers WHERE sampler_id = ?", (sampler_id,)
            ).fetchone()
        return None if row is None else int(row[0])

    # sessions' projects, usage and audit (the REST endpoints of 0.38)

    def set_session_project(self, session_id: str, project_id: str) -> bool:
        """Move a session to a project; False when the session does not exist."""
        with self._tx() as db:
            cursor = db.execute(
                "UPDATE sessions SET project_id = ? WHERE session_id = ?", (project_id, session_id)
            )
            return cursor.rowcount > 0

    def all_sessions(self) -> list[SessionRow]:
        """Every session, newest first."""
        rows = self._query("SELECT * FROM sessions ORDER BY created_at DESC, session_id")
        return [_session(row) for row in rows]

    def add_usage(self, row: UsageRow) -> None:
        """Add `row.amount` to its hour's total."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO usage VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT "
                "(bucket_start, session_id, base_model, kind, cached) "
                "DO UPDATE SET amount = amount + excluded.amount",
                (
                    row.bucket_start,
                    row.session_id,
                    row.base_model,
                    row.kind,
                    int(row.cached),
                    row.amount,
                ),
            )

    def usage_between(self, start: float, end: float) -> list[UsageRow]:
        """The hourly totals of buckets starting in [start, end)."""
        rows = self._query(
            "SELECT * FROM usage WHERE bucket_start >= ? AND bucket_start < ? "
            "ORDER BY bucket_start, session_id, base_model, kind, cached",
            (start, end),
        )
        return [UsageRow(b, s, m, k, bool(c), int(a)) for b, s, m, k, c, a in rows]

    def add_audit(self, row: AuditRow) -> None:
        """Append an event to the audit log."""
        with self._tx() as db:
            db.execute(
                "INSERT INTO audit VALUES (?, ?, ?, ?)",
                (row.timestamp, row.category, row.event, json.dumps(row.details)),
            )

    def audit_between(self, start: float, end: float, category: str | None) -> list[AuditRow]:
        """Events in [start, end), oldest first, of one category (None: all)."""
        where = "timestamp >= ? AND timestamp < ?"
        args: tuple[Any, ...] = (start, end)
        if category is not None:
            where, args = where + " AND category = ?", (*args, category)
        rows = self._query(f"SELECT * FROM audit WHERE {where} ORDER BY timestamp", args)
        return [AuditRow(t, c, e, json.loads(d)) for t, c, e, d in rows]

    def checkpoint_totals(self) -> list[tuple[str, str | None, int, int]]:
        """(session id, its project, checkpoints, bytes) of every session with checkpoints."""
        rows = self._query(
            "SELECT r.session_id, s.project_id, COUNT(*), COALESCE(SUM(c.size_bytes), 0) "
            "FROM checkpoints c JOIN training_runs r ON c.run_id = r.run_id "
            "LEFT JOIN sessions s ON s.session_id = r.session_id GROUP BY r.session_id"
        )
        return [(str(sid), project, int(count), int(size)) for sid, project, count, size in rows]

    def samplers_of_session(self, session_id: str) -> list[str]:
        """Ids of a session's samplers in creation order."""

        rows = self._query(
            "SELECT sampler_id FROM samplers WHERE session_id = ? ORDER BY created_at, sampler_id",
            (session_id,),
        )
        return [str(row[0]) for row in rows]


def now() -> float:
    """Wall-clock time in seconds (timestamps in the store are Unix times)."""
    return time.time()


def _dump(value: Mapping[str, Any] | None) -> str | None:
    return None if value is None else json.dumps(dict(value))


def _load(value: str | None) -> Any:
    return None if value is None else json.loads(value)


def _session(row: tuple[Any, ...]) -> SessionRow:
    sid, created, seen, tags, meta, version, expired, *ending = row
    return SessionRow(sid, created, seen, json.loads(tags), _load(meta), version, expired, *ending)


def _run(row: tuple[Any, ...]) -> RunRow:
    (rid, sid, seq, base, rank, seed, mlp, attn, unembed, meta, created, last, bad, opt) = row
    return RunRow(
        rid,
        sid,
        seq,
        base,
        rank,
        seed,
        bool(mlp),
        bool(attn),
        bool(unembed),
        _load(meta),
        created,
        last,
        bool(bad),
        _load(opt),
    )


def _checkpoint(row: tuple[Any, ...]) -> CheckpointRow:
    run_id, kind, name, created, size, public, expires, directory, meta = row
    ref = CheckpointRef(run_id, kind, name)
    return CheckpointRow(ref, created, size, bool(public), expires, directory, _load(meta))


def expiry_time(ttl_seconds: float | None) -> float | None:
    """The Unix time `ttl_seconds` from now (None: never); BadRequest unless positive."""
    if ttl_seconds is None:
        return None
    if ttl_seconds <= 0:
        raise BadRequest(f"ttl_seconds must be positive, got {ttl_seconds}.")
    return now() + ttl_seconds
