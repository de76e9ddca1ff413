"""What the parts of the engine share: store, backend, futures, sessions, settings; running jobs.

A job returns its result as a `tinker.types` model; the encoded body resolves its future. A
job's exception becomes a failed future instead: bad client input (the backend's user errors
and 4xx HTTPErrors) has category "user", anything else "server" (and is logged with its
traceback).
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import attrs

from tinker import _wire, types
from tinker.local.compute.backend import Backend, ModelInfo
from tinker.local.server import responses
from tinker.local.server.futures import FutureStore
from tinker.local.server.http_errors import BadRequest, HTTPError
from tinker.local.server.sessions import Sessions
from tinker.local.server.settings import EngineConfig
from tinker.local.server.store import Store

logger = logging.getLogger(__name__)


@attrs.frozen
class EngineContext:
    """The shared services of the training and sampling parts of the engine."""

    store: Store
    backend: Backend
    futures: FutureStore
    sessions: Sessions
    config: EngineConfig

    def known_model(self, name: str) -> ModelInfo:
        """The backend's catalogue entry of `name`, or BadRequest naming the known models."""
        try:
            return self.backend.model_info(name)
        except self.backend.user_errors as exc:
            raise BadRequest(str(exc)) from exc

    def run_job(self, request_id: str, fn: Callable[[], types.WireModel]) -> None:
        """Run one job and resolve its future with the result, or with its failure."""
        try:
            result = fn()
        except self.backend.user_errors as exc:
            result = responses.failure(str(exc), "user")
        except HTTPError as exc:
            result = responses.failure(str(exc), "user" if exc.status < 500 else "server")
        except Exception as exc:
            logger.exception("request %s failed", request_id)
            result = responses.failure(f"Internal error: {type(exc).__name__}: {exc}", "server")
        self.futures.resolve(request_id, _encoded(request_id, result))

    def fail(self, request_id: str, message: str, category: str) -> None:
        """Resolve a future with a failure without running its job (e.g. the run was unloaded)."""
        self.futures.resolve(request_id, _wire.dumps(responses.failure(message, category)))


def _encoded(request_id: str, result: types.WireModel) -> bytes:
    """The result as JSON, or a failure when it holds NaN or infinity (JSON has neither)."""
    try:
        return _wire.dumps(result)
    except ValueError as exc:
        logger.warning("request %s: the result cannot be sent: %s", request_id, exc)
        message = f"The result holds a value JSON cannot carry (has training diverged?): {exc}"
        return _wire.dumps(responses.failure(message, "server"))
