"""What the parts of the engine share: store, backend, futures, sessions, settings, accounting;
running jobs.

A job returns its result as a `tinker.types` model or a server.outcomes Result (one with a
protobuf form too); that outcome resolves its future. A job's exception becomes a failed future
instead: bad client input (the backend's user errors and 4xx HTTPErrors) has category "user",
anything else "server" (and is logged with its traceback, unless the server is stopping: a job
cut short by the shutdown of what it uses is expected then, and logged in one line).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TypeVar

import attrs

from tinker.local.compute.backend import Backend, ModelInfo
from tinker.local.server.accounting import Accounting
from tinker.local.server.futures import FutureStore
from tinker.local.server.http_errors import BadRequest, HTTPError
from tinker.local.server.outcomes import JobValue, Outcome
from tinker.local.server.sessions import Sessions
from tinker.local.server.settings import EngineConfig
from tinker.local.server.store import Store

logger = logging.getLogger(__name__)

T = TypeVar("T")


@attrs.frozen
class EngineContext:
    """The shared services of the training and sampling parts of the engine."""

    store: Store
    backend: Backend
    futures: FutureStore
    sessions: Sessions
    config: EngineConfig
    accounting: Accounting
    stopping: threading.Event = attrs.field(factory=threading.Event)

    def known_model(self, name: str) -> ModelInfo:
        """The backend's catalogue entry of `name`, or BadRequest naming the known models."""
        return self.check(lambda: self.backend.model_info(name))

    def check(self, call: Callable[[], T]) -> T:
        """`call()`, with the backend's user errors raised as BadRequest (a 400 at submit)."""
        try:
            return call()
        except self.backend.user_errors as exc:
            raise BadRequest(str(exc)) from exc

    def run_job(self, request_id: str, fn: Callable[[], JobValue]) -> None:
        """Run one job and resolve its future with the result, or with its failure."""
        try:
            outcome = Outcome(request_id, fn(), failed=False)
        except self.backend.user_errors as exc:
            outcome = Outcome.failure(request_id, str(exc), "user")
        except HTTPError as exc:
            outcome = Outcome.failure(
                request_id, str(exc), "user" if exc.status < 500 else "server"
            )
        except Exception as exc:
            if self.stopping.is_set():
                logger.info("request %s ended by the server stopping: %r", request_id, exc)
            else:
                logger.exception("request %s failed", request_id)
            message = f"Internal error: {type(exc).__name__}: {exc}"
            outcome = Outcome.failure(request_id, message, "server")
        self.futures.resolve(request_id, outcome)

    def fail(self, request_id: str, message: str, category: str) -> None:
        """Resolve a future with a failure without running its job (e.g. the run was unloaded)."""
        self.futures.resolve(request_id, Outcome.failure(request_id, message, category))
