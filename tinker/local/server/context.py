"""What the parts of the engine share: store, backend, futures, sessions, settings; running jobs.

A job's exception becomes a failed future: bad client input (the backend's user errors and 4xx
HTTPErrors) has category "user", anything else "server" (and is logged with its traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from tinker.local.compute.backend import Backend, ModelInfo
from tinker.local.server import responses
from tinker.local.server.futures import JSONDict, ResultStore
from tinker.local.server.http_errors import BadRequest, HTTPError
from tinker.local.server.sessions import Sessions
from tinker.local.server.settings import EngineConfig
from tinker.local.server.store import Store

logger = logging.getLogger(__name__)


@attrs.frozen
class Submitted:
    """The UntypedAPIFuture answer of a submit."""

    request_id: str
    model_id: str | None = None


@attrs.frozen
class EngineContext:
    """The shared services of the training and sampling parts of the engine."""

    store: Store
    backend: Backend
    results: ResultStore
    sessions: Sessions
    config: EngineConfig

    def known_model(self, name: str) -> ModelInfo:
        """The backend's catalogue entry of `name`, or BadRequest naming the known models."""
        try:
            return self.backend.model_info(name)
        except self.backend.user_errors as exc:
            raise BadRequest(str(exc)) from exc

    def run_job(self, request_id: str, fn: Callable[[], JSONDict]) -> None:
        """Run one job and store its result, or its failure with the right category."""
        try:
            payload = fn()
        except self.backend.user_errors as exc:
            payload = responses.failure(str(exc), "user")
        except HTTPError as exc:
            payload = responses.failure(str(exc), "user" if exc.status < 500 else "server")
        except Exception as exc:
            logger.exception("request %s failed", request_id)
            payload = responses.failure(f"Internal error: {type(exc).__name__}: {exc}", "server")
        self.results.resolve(request_id, payload)
