"""RestClient: training runs, checkpoints, sessions and samplers over the REST endpoints.

Sync methods return a future at once (the work runs on the runtime's pool); every method has
an `*_async` twin that returns the value. Arguments are checked in the caller's thread.
Checkpoint ids (`weights/<name>`, `sampler_weights/<name>`) go into URLs with their '/'.
"""

from __future__ import annotations

import datetime
import email.utils
from typing import Any, TypeVar

from tinker import types
from tinker._http import Reply
from tinker._ops import ClientBase, check_tinker_path
from tinker._retry import SUBMIT, TRANSPORT
from tinker._runtime import Runtime, Traffic
from tinker._sync import Thunk, async_method, future_method
from tinker.errors import status_error

__all__ = ["ARCHIVE_URL_DEFAULT_LIFETIME", "RestClient"]

T = TypeVar("T")
ARCHIVE_URL_DEFAULT_LIFETIME = datetime.timedelta(minutes=15)


def _check_id(value: object, what: str) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{what} must be a non-empty str, got {value!r}")
    return value


def _check_page(limit: object, offset: object) -> tuple[int, int]:
    for name, value, least in (("limit", limit, 1), ("offset", offset, 0)):
        if not isinstance(value, int) or isinstance(value, bool) or value < least:
            raise ValueError(f"{name} must be an int >= {least}, got {value!r}")
    return limit, offset  # type: ignore[return-value]


def _parse_checkpoint_path(tinker_path: object) -> types.ParsedCheckpointTinkerPath:
    return types.ParsedCheckpointTinkerPath.from_tinker_path(
        check_tinker_path(tinker_path, "tinker_path")
    )


def _archive_expiry(raw: str | None, now: datetime.datetime) -> datetime.datetime:
    """The Expires header as an aware datetime; now + 15 min when absent or unparsable."""
    if raw:
        try:
            parsed = email.utils.parsedate_to_datetime(raw)
        except (TypeError, ValueError, IndexError):
            parsed = None
        if parsed is not None:
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=datetime.timezone.utc)
    return now + ARCHIVE_URL_DEFAULT_LIFETIME


class RestClient(ClientBase):
    """Read and manage the account's training runs, checkpoints, sessions and samplers."""

    def __repr__(self) -> str:
        return f"RestClient(base_url={self._runtime.config.base_url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        runtime = self._runtime
        return (_reattach, (runtime.config, runtime.session_id))

    def _call(
        self,
        method: str,
        path: str,
        result: type[T] | None,
        *,
        params: dict[str, object] | None = None,
        body: object | None = None,
    ) -> Thunk[Any]:
        def run() -> Any:
            return self._runtime.call(
                Traffic.TRAIN, method, path, body=body, params=params, result=result, retry=SUBMIT
            )

        return run

    def _plan_get_training_run(self, training_run_id: str) -> Thunk[types.TrainingRun]:
        """The training run `training_run_id` (a model id)."""
        run_id = _check_id(training_run_id, "training_run_id")
        return self._call("GET", f"/api/v1/training_runs/{run_id}", types.TrainingRun)

    get_training_run = future_method(_plan_get_training_run)
    get_training_run_async = async_method(_plan_get_training_run)

    def _plan_get_training_run_by_tinker_path(self, tinker_path: str) -> Thunk[types.TrainingRun]:
        """The training run that a `tinker://` checkpoint path belongs to."""
        parsed = _parse_checkpoint_path(tinker_path)
        return self._plan_get_training_run(parsed.training_run_id)

    get_training_run_by_tinker_path = future_method(_plan_get_training_run_by_tinker_path)
    get_training_run_by_tinker_path_async = async_method(_plan_get_training_run_by_tinker_path)

    def _plan_get_weights_info_by_tinker_path(
        self, tinker_path: str
    ) -> Thunk[types.WeightsInfoResponse]:
        """Base model and LoRA rank of a checkpoint (also works for public checkpoints)."""
        path = check_tinker_path(tinker_path, "tinker_path")
        return self._call(
            "POST", "/api/v1/weights_info", types.WeightsInfoResponse, body={"tinker_path": path}
        )

    get_weights_info_by_tinker_path = future_method(_plan_get_weights_info_by_tinker_path)
    get_weights_info_by_tinker_path_async = async_method(_plan_get_weights_info_by_tinker_path)

    def _plan_list_training_runs(
        self, limit: int = 20, offset: int = 0
    ) -> Thunk[types.TrainingRunsResponse]:
        """One page of the account's training runs."""
        limit, offset = _check_page(limit, offset)
        return self._call(
            "GET",
            "/api/v1/training_runs",
            types.TrainingRunsResponse,
            params={"limit": limit, "offset": offset},
        )

    list_training_runs = future_method(_plan_list_training_runs)
    list_training_runs_async = async_method(_plan_list_training_runs)

    def _plan_list_checkpoints(self, training_run_id: str) -> Thunk[types.CheckpointsListResponse]:
        """Every checkpoint of one training run."""
        run_id = _check_id(training_run_id, "training_run_id")
        return self._call(
            "GET", f"/api/v1/training_runs/{run_id}/checkpoints", types.CheckpointsListResponse
        )

    list_checkpoints = future_method(_plan_list_checkpoints)
    list_checkpoints_async = async_method(_plan_list_checkpoints)

    def _plan_list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> Thunk[types.CheckpointsListResponse]:
        """One page of the checkpoints of all the account's runs, newest first."""
        limit, offset = _check_page(limit, offset)
        return self._call(
            "GET",
            "/api/v1/checkpoints",
            types.CheckpointsListResponse,
            params={"limit": limit, "offset": offset},
        )

    list_user_checkpoints = future_method(_plan_list_user_checkpoints)
    list_user_checkpoints_async = async_method(_plan_list_user_checkpoints)

    def _plan_get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> Thunk[types.CheckpointArchiveUrlResponse]:
        """A signed download URL of a checkpoint archive (from the server's redirect)."""
        run_id = _check_id(training_run_id, "training_run_id")
        checkpoint = _check_id(checkpoint_id, "checkpoint_id")
        path = f"/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}/archive"

        def run() -> types.CheckpointArchiveUrlResponse:
            reply: Reply = self._runtime.call(
                Traffic.TRAIN,
                "GET",
                path,
                headers={"Accept": "application/gzip"},
                result=Reply,
                retry=TRANSPORT,
                allow_redirects=False,
            )
            if reply.status_code < 300:
                raise RuntimeError(
                    f"Expected a redirect response from {path}, got HTTP {reply.status_code}"
                )
            location = reply.headers.get("Location")
            if reply.status_code >= 400 or not location:
                raise status_error(reply.status_code, reply.body, response=reply)
            now = datetime.datetime.now(datetime.timezone.utc)
            return types.CheckpointArchiveUrlResponse(
                url=location, expires=_archive_expiry(reply.headers.get("Expires"), now)
            )

        return run

    get_checkpoint_archive_url = future_method(_plan_get_checkpoint_archive_url)
    get_checkpoint_archive_url_async = async_method(_plan_get_checkpoint_archive_url)

    def _plan_get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> Thunk[types.CheckpointArchiveUrlResponse]:
        """`get_checkpoint_archive_url` for a `tinker://` checkpoint path."""
        parsed = _parse_checkpoint_path(tinker_path)
        return self._plan_get_checkpoint_archive_url(parsed.training_run_id, parsed.checkpoint_id)

    get_checkpoint_archive_url_from_tinker_path = future_method(
        _plan_get_checkpoint_archive_url_from_tinker_path
    )
    get_checkpoint_archive_url_from_tinker_path_async = async_method(
        _plan_get_checkpoint_archive_url_from_tinker_path
    )

    def _plan_delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> Thunk[None]:
        """Delete one checkpoint of a training run."""
        run_id = _check_id(training_run_id, "training_run_id")
        checkpoint = _check_id(checkpoint_id, "checkpoint_id")
        return self._call(
            "DELETE", f"/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}", None
        )

    delete_checkpoint = future_method(_plan_delete_checkpoint)
    delete_checkpoint_async = async_method(_plan_delete_checkpoint)

    def _plan_delete_checkpoint_from_tinker_path(self, tinker_path: str) -> Thunk[None]:
        """Delete the checkpoint at a `tinker://` path."""
        parsed = _parse_checkpoint_path(tinker_path)
        return self._plan_delete_checkpoint(parsed.training_run_id, parsed.checkpoint_id)

    delete_checkpoint_from_tinker_path = future_method(_plan_delete_checkpoint_from_tinker_path)
    delete_checkpoint_from_tinker_path_async = async_method(
        _plan_delete_checkpoint_from_tinker_path
    )

    def _publish(self, tinker_path: str, method: str) -> Thunk[None]:
        parsed = _parse_checkpoint_path(tinker_path)
        path = (
            f"/api/v1/training_runs/{parsed.training_run_id}"
            f"/checkpoints/{parsed.checkpoint_id}/publish"
        )
        return self._call(method, path, None)

    def _plan_publish_checkpoint_from_tinker_path(self, tinker_path: str) -> Thunk[None]:
        """Make a checkpoint public (409 if it already is)."""
        return self._publish(tinker_path, "POST")

    publish_checkpoint_from_tinker_path = future_method(_plan_publish_checkpoint_from_tinker_path)
    publish_checkpoint_from_tinker_path_async = async_method(
        _plan_publish_checkpoint_from_tinker_path
    )

    def _plan_unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> Thunk[None]:
        """Make a checkpoint private again (409 if it already is)."""
        return self._publish(tinker_path, "DELETE")

    unpublish_checkpoint_from_tinker_path = future_method(
        _plan_unpublish_checkpoint_from_tinker_path
    )
    unpublish_checkpoint_from_tinker_path_async = async_method(
        _plan_unpublish_checkpoint_from_tinker_path
    )

    def _plan_set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> Thunk[None]:
        """Expire a checkpoint `ttl_seconds` from now, or never (None)."""
        parsed = _parse_checkpoint_path(tinker_path)
        if ttl_seconds is not None and (
            not isinstance(ttl_seconds, int) or isinstance(ttl_seconds, bool) or ttl_seconds <= 0
        ):
            raise ValueError(f"ttl_seconds must be a positive int or None, got {ttl_seconds!r}")
        path = (
            f"/api/v1/training_runs/{parsed.training_run_id}/checkpoints/{parsed.checkpoint_id}/ttl"
        )
        return self._call("PUT", path, None, body={"ttl_seconds": ttl_seconds})

    set_checkpoint_ttl_from_tinker_path = future_method(_plan_set_checkpoint_ttl_from_tinker_path)
    set_checkpoint_ttl_from_tinker_path_async = async_method(
        _plan_set_checkpoint_ttl_from_tinker_path
    )

    def _plan_get_session(self, session_id: str) -> Thunk[types.GetSessionResponse]:
        """The training runs and samplers of a session."""
        sid = _check_id(session_id, "session_id")
        return self._call("GET", f"/api/v1/sessions/{sid}", types.GetSessionResponse)

    get_session = future_method(_plan_get_session)
    get_session_async = async_method(_plan_get_session)

    def _plan_list_sessions(
        self, limit: int = 20, offset: int = 0
    ) -> Thunk[types.ListSessionsResponse]:
        """One page of the account's session ids."""
        limit, offset = _check_page(limit, offset)
        return self._call(
            "GET",
            "/api/v1/sessions",
            types.ListSessionsResponse,
            params={"limit": limit, "offset": offset},
        )

    list_sessions = future_method(_plan_list_sessions)
    list_sessions_async = async_method(_plan_list_sessions)

    def _plan_get_sampler(self, sampler_id: str) -> Thunk[types.GetSamplerResponse]:
        """Base model and weights path of a sampler."""
        sid = _check_id(sampler_id, "sampler_id")
        return self._call("GET", f"/api/v1/samplers/{sid}", types.GetSamplerResponse)

    get_sampler = future_method(_plan_get_sampler)
    get_sampler_async = async_method(_plan_get_sampler)


def _reattach(config: Any, session_id: str) -> RestClient:
    return RestClient(Runtime.attach(config, session_id))
