"""The local server's engine: sessions, training runs, samplers and futures behind one object.

It wires the parts together (sessions, runs, samplers, futures, store), ends sessions (idle
expiry, or the client's finish), serves the checkpoint operations of the REST endpoints and
runs the periodic maintenance: expired results, idle sessions, checkpoints past their TTL,
old download links.
"""

from __future__ import annotations

import logging
import re
import threading

from tinker import types
from tinker.local.compute.backend import Backend
from tinker.local.server.accounting import CHECKPOINTS, Accounting
from tinker.local.server.context import EngineContext
from tinker.local.server.downloads import Download, Downloads
from tinker.local.server.exports import Exports
from tinker.local.server.futures import Completion, FutureStore, Target, UnknownFuture
from tinker.local.server.http_errors import NotFound
from tinker.local.server.outcomes import Outcome
from tinker.local.server.paths import CheckpointRef, parse_tinker_path
from tinker.local.server.runs import TrainingRuns
from tinker.local.server.samplers import Samplers
from tinker.local.server.sessions import Sessions
from tinker.local.server.settings import EngineConfig
from tinker.local.server.store import Store, expiry_time, now

logger = logging.getLogger(__name__)

# Request ids of training operations: `<run id>:<seq_id>`, the run id `<session>:train:<n>`.
_RUN_OF_REQUEST = re.compile(r"(.+:train:[0-9]+):[^:]+")


class Engine:
    """All server state except HTTP: thread-safe, shared by the request handler threads."""

    def __init__(self, store: Store, backend: Backend, config: EngineConfig | None = None) -> None:
        self.store = store
        self.backend = backend
        self.config = config or EngineConfig()
        self.futures = FutureStore(
            delivered_grace_seconds=self.config.result_grace_seconds,
            undelivered_seconds=self.config.result_max_age_seconds,
        )
        self.sessions = Sessions(store, self.config.session_idle_seconds)
        self.accounting = Accounting(store)
        self._context = EngineContext(
            store, backend, self.futures, self.sessions, self.config, self.accounting
        )
        self.samplers = Samplers(self._context)
        self.runs = TrainingRuns(self._context, self.samplers)
        self.downloads = Downloads(self.config.archive_url_seconds)
        self.exports = Exports(store, backend, self.sessions, self.downloads, self.accounting)
        self._stop = self._context.stopping  # one flag: also tells jobs the server is stopping
        self._maintenance = threading.Thread(
            target=self._maintain, name="tinker-local-maintenance", daemon=True
        )
        self._maintenance.start()

    def close(self) -> None:
        """Stop background work: run queues, sample pool, maintenance, waiting polls."""
        self._stop.set()
        self.runs.close()
        self.samplers.close()
        self.futures.close()
        self._maintenance.join(timeout=5.0)

    def model_names(self) -> list[str]:
        """Names of the base models this server trains and samples."""
        return self.backend.model_names()

    def retrieve(self, request_id: str, timeout: float | None = None) -> Outcome | None:
        """The result or failure, or None if still pending after the long-poll bound.

        NotFound for an id this server does not know says how to resume after a restart.
        """
        wait = self.config.long_poll_seconds if timeout is None else timeout
        try:
            return self.futures.wait(request_id, wait)
        except UnknownFuture:
            raise NotFound(self._unknown_future(request_id)) from None

    def completions(
        self, target: Target, after: int, timeout: float | None, acknowledged: list[str]
    ) -> tuple[list[Completion], int]:
        """retrieve_futures: the target's completions after cursor `after`, waiting up to the
        batch-poll bound (`timeout` shortens it; 0 answers at once)."""
        wait = self.config.batch_poll_seconds
        if timeout is not None:
            wait = min(wait, max(0.0, timeout))
        self.samplers.get(target.sampling_session_id)
        return self.futures.completions(target, after, wait, acknowledged)

    def cancel(self, request_id: str) -> bool:
        """cancel_future: stop the request's work if it has not started (False otherwise)."""
        try:
            return self.futures.cancel(request_id)
        except UnknownFuture:
            raise NotFound(self._unknown_future(request_id)) from None

    def finish_session(self, session_id: str, reason: str, detail: str | None) -> None:
        """The client ends its session: the first reason is kept, and the session's runs,
        samplers' weights and pending completions are let go."""
        if self.sessions.finish(session_id, reason, detail):
            self._end_sessions([session_id])

    def _end_sessions(self, session_ids: list[str]) -> None:
        self.runs.unload_sessions(session_ids)
        self.samplers.forget_sessions(session_ids)

    def _unknown_future(self, request_id: str) -> str:
        resume = "create_training_client_from_state_with_optimizer(<its last checkpoint>)"
        run = _RUN_OF_REQUEST.match(request_id)
        latest = self.store.latest_checkpoint(run.group(1), "weights") if run else None
        if latest is not None:
            resume = f"create_training_client_from_state_with_optimizer({latest.ref.tinker_path!r})"
        return (
            f"Future {request_id!r} is unknown to this server: it was never submitted here, or "
            "the server restarted since then, losing the work in progress. To resume a training "
            f"run, start from its last checkpoint: {resume}."
        )

    # checkpoints (REST)

    def weights_info(self, tinker_path: str) -> types.WeightsInfoResponse:
        """WeightsInfoResponse for a checkpoint of this server (own or published)."""
        ref = parse_tinker_path(tinker_path)
        if self.store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {tinker_path!r} not found.")
        run = self.runs.run_row(ref.run_id)
        return types.WeightsInfoResponse(
            base_model=run.base_model, is_lora=True, lora_rank=run.lora_rank
        )

    def delete_checkpoint(self, ref: CheckpointRef) -> None:
        """Delete a checkpoint's row and files; NotFound if it does not exist."""
        if not self.store.delete_checkpoint(ref):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        self.accounting.audit(CHECKPOINTS, "checkpoint_deleted", tinker_path=ref.tinker_path)

    def set_public(self, ref: CheckpointRef, public: bool) -> None:
        """Publish or unpublish (idempotent); NotFound if the checkpoint does not exist."""
        if not self.store.set_public(ref, public):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        event = "checkpoint_published" if public else "checkpoint_unpublished"
        self.accounting.audit(CHECKPOINTS, event, tinker_path=ref.tinker_path)

    def set_ttl(self, ref: CheckpointRef, ttl_seconds: float | None) -> None:
        """Expire a checkpoint `ttl_seconds` from now, or never (None); NotFound if missing."""
        if not self.store.set_expiry(ref, expiry_time(ttl_seconds)):
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        self.accounting.audit(
            CHECKPOINTS, "checkpoint_ttl_set", tinker_path=ref.tinker_path, ttl_seconds=ttl_seconds
        )

    def archive_token(self, ref: CheckpointRef) -> tuple[str, float]:
        """A short-lived download token for a checkpoint's archive and its expiry (Unix time)."""
        if self.store.get_checkpoint(ref) is None:
            raise NotFound(f"Checkpoint {ref.tinker_path!r} not found.")
        archive = Download(
            f"{ref.name}.tar", "application/x-tar", lambda: self.store.checkpoint_archive(ref)
        )
        return self.downloads.add(archive)

    # maintenance

    def _maintain(self) -> None:
        while not self._stop.wait(self.config.maintenance_seconds):
            try:
                self.maintain_once()
            except Exception:
                logger.exception("local server maintenance failed")

    def maintain_once(self) -> None:
        """Drop expired results, idle sessions, expired checkpoints and archive links."""
        self.futures.sweep()
        ended = self.sessions.expire_idle()
        if ended:
            self._end_sessions(ended)
        wall = now()
        for ref in self.store.expired_checkpoints(wall):
            logger.info("deleting expired checkpoint %s", ref.tinker_path)
            self.store.delete_checkpoint(ref)
        self.downloads.sweep()
