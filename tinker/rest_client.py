"""RestClient: training runs, checkpoints, sessions and samplers over the REST endpoints.

Every method checks its arguments in the caller's thread and returns an APIFuture at once (the
request goes out from the runtime's submit pool, retried for up to 5 minutes); every method has
an `*_async` twin that returns the value. Checkpoint ids (`weights/<name>`,
`sampler_weights/<name>`) go into URLs with their '/'.
"""

from __future__ import annotations

import datetime
import email.utils
import functools
from typing import Any

from tinker import _twins as twins
from tinker import _validation as validation
from tinker import types
from tinker._calls import ApiCall
from tinker._futures import APIFuture, flatten, transform
from tinker._retry import SUBMIT, TRANSPORT
from tinker._runtime import ClientBase
from tinker._session import attach
from tinker._transport import Reply, Traffic
from tinker.config import LEGACY_SERVER, ClientConfig, ServerConfig
from tinker.errors import status_error

__all__ = ["ARCHIVE_URL_DEFAULT_LIFETIME", "RestClient"]

ARCHIVE_URL_DEFAULT_LIFETIME = datetime.timedelta(minutes=15)


class RestClient(ClientBase):
    """Read and manage the account's training runs, checkpoints, sessions and samplers."""

    def __repr__(self) -> str:
        return f"RestClient(base_url={self._runtime.config.base_url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        runtime = self._runtime
        return (_reattach, (runtime.portable_config(), runtime.session_id, runtime.server))

    def _send(
        self,
        method: str,
        path: str,
        result: type[Any] | None,
        *,
        params: dict[str, object] | None = None,
        body: object | None = None,
    ) -> APIFuture[Any]:
        """One REST call in the background, retried for up to 5 minutes; its future."""
        call = ApiCall(
            traffic=Traffic.TRAIN,
            method=method,
            path=path,
            body=body,
            params=params,
            result=result,
            retry=SUBMIT,
        )
        return self._runtime.operation(flatten(self._runtime.submit(call)))

    def _page(self, path: str, result: type[Any], limit: object, offset: object) -> APIFuture[Any]:
        """One page (`limit` >= 1 items from `offset` >= 0) of a list resource."""
        limit, offset = validation.check_page(limit, offset)
        return self._send("GET", path, result, params={"limit": limit, "offset": offset})

    def get_training_run(self, training_run_id: str) -> APIFuture[types.TrainingRun]:
        """The training run `training_run_id` (a model id); NotFoundError if there is none."""
        run_id = validation.check_id(training_run_id, "training_run_id")
        return self._send("GET", f"/api/v1/training_runs/{run_id}", types.TrainingRun)

    get_training_run_async = twins.awaiting(get_training_run)

    def get_training_run_by_tinker_path(self, tinker_path: str) -> APIFuture[types.TrainingRun]:
        """The training run that a `tinker://` checkpoint path belongs to."""
        parsed = validation.check_checkpoint_path(tinker_path)
        return self.get_training_run(parsed.training_run_id)

    get_training_run_by_tinker_path_async = twins.awaiting(get_training_run_by_tinker_path)

    def get_weights_info_by_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[types.WeightsInfoResponse]:
        """Base model, LoRA rank and trained layer groups of a checkpoint (public ones too)."""
        path = validation.check_tinker_path(tinker_path, "tinker_path")
        return self._send(
            "POST", "/api/v1/weights_info", types.WeightsInfoResponse, body={"tinker_path": path}
        )

    get_weights_info_by_tinker_path_async = twins.awaiting(get_weights_info_by_tinker_path)

    def list_training_runs(
        self, limit: int = 20, offset: int = 0
    ) -> APIFuture[types.TrainingRunsResponse]:
        """One page of the account's training runs (`limit` >= 1 from `offset` >= 0), with
        the cursor to the next."""
        return self._page("/api/v1/training_runs", types.TrainingRunsResponse, limit, offset)

    list_training_runs_async = twins.awaiting(list_training_runs)

    def list_checkpoints(self, training_run_id: str) -> APIFuture[types.CheckpointsListResponse]:
        """Every checkpoint of one training run."""
        run_id = validation.check_id(training_run_id, "training_run_id")
        return self._send(
            "GET", f"/api/v1/training_runs/{run_id}/checkpoints", types.CheckpointsListResponse
        )

    list_checkpoints_async = twins.awaiting(list_checkpoints)

    def list_user_checkpoints(
        self, limit: int = 100, offset: int = 0
    ) -> APIFuture[types.CheckpointsListResponse]:
        """One page of the checkpoints of all the account's runs, newest first."""
        return self._page("/api/v1/checkpoints", types.CheckpointsListResponse, limit, offset)

    list_user_checkpoints_async = twins.awaiting(list_user_checkpoints)

    def get_checkpoint_archive_url(
        self, training_run_id: str, checkpoint_id: str
    ) -> APIFuture[types.CheckpointArchiveUrlResponse]:
        """A signed download URL of a checkpoint archive, and when it expires.

        The server answers with a redirect, which is not followed: its Location is the URL,
        its Expires header the expiry (15 minutes from now when absent).
        """
        run_id = validation.check_id(training_run_id, "training_run_id")
        checkpoint = validation.check_id(checkpoint_id, "checkpoint_id")
        path = f"/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}/archive"
        call = ApiCall(
            traffic=Traffic.TRAIN,
            method="GET",
            path=path,
            headers={"Accept": "application/gzip"},
            result=Reply,
            retry=TRANSPORT,
        )
        reply = flatten(self._runtime.submit(call))
        return transform(reply, functools.partial(_archive_url, path))

    get_checkpoint_archive_url_async = twins.awaiting(get_checkpoint_archive_url)

    def get_checkpoint_archive_url_from_tinker_path(
        self, tinker_path: str
    ) -> APIFuture[types.CheckpointArchiveUrlResponse]:
        """`get_checkpoint_archive_url` for a `tinker://` checkpoint path."""
        parsed = validation.check_checkpoint_path(tinker_path)
        return self.get_checkpoint_archive_url(parsed.training_run_id, parsed.checkpoint_id)

    get_checkpoint_archive_url_from_tinker_path_async = twins.awaiting(
        get_checkpoint_archive_url_from_tinker_path
    )

    def delete_checkpoint(self, training_run_id: str, checkpoint_id: str) -> APIFuture[None]:
        """Delete one checkpoint of a training run."""
        run_id = validation.check_id(training_run_id, "training_run_id")
        checkpoint = validation.check_id(checkpoint_id, "checkpoint_id")
        return self._send(
            "DELETE", f"/api/v1/training_runs/{run_id}/checkpoints/{checkpoint}", None
        )

    delete_checkpoint_async = twins.awaiting(delete_checkpoint)

    def delete_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Delete the checkpoint at a `tinker://` path."""
        parsed = validation.check_checkpoint_path(tinker_path)
        return self.delete_checkpoint(parsed.training_run_id, parsed.checkpoint_id)

    delete_checkpoint_from_tinker_path_async = twins.awaiting(delete_checkpoint_from_tinker_path)

    def publish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint public (ConflictError if it already is)."""
        return self._publish(tinker_path, "POST")

    publish_checkpoint_from_tinker_path_async = twins.awaiting(publish_checkpoint_from_tinker_path)

    def unpublish_checkpoint_from_tinker_path(self, tinker_path: str) -> APIFuture[None]:
        """Make a checkpoint private again (ConflictError if it already is)."""
        return self._publish(tinker_path, "DELETE")

    unpublish_checkpoint_from_tinker_path_async = twins.awaiting(
        unpublish_checkpoint_from_tinker_path
    )

    def _publish(self, tinker_path: str, method: str) -> APIFuture[None]:
        parsed = validation.check_checkpoint_path(tinker_path)
        path = (
            f"/api/v1/training_runs/{parsed.training_run_id}"
            f"/checkpoints/{parsed.checkpoint_id}/publish"
        )
        return self._send(method, path, None)

    def set_checkpoint_ttl_from_tinker_path(
        self, tinker_path: str, ttl_seconds: int | None
    ) -> APIFuture[None]:
        """Expire a checkpoint `ttl_seconds` (a positive int) from now, or never (None)."""
        parsed = validation.check_checkpoint_path(tinker_path)
        ttl = validation.check_ttl(ttl_seconds)
        path = (
            f"/api/v1/training_runs/{parsed.training_run_id}/checkpoints/{parsed.checkpoint_id}/ttl"
        )
        return self._send("PUT", path, None, body={"ttl_seconds": ttl})

    set_checkpoint_ttl_from_tinker_path_async = twins.awaiting(set_checkpoint_ttl_from_tinker_path)

    def get_session(self, session_id: str) -> APIFuture[types.GetSessionResponse]:
        """The training runs and samplers of a session."""
        sid = validation.check_id(session_id, "session_id")
        return self._send("GET", f"/api/v1/sessions/{sid}", types.GetSessionResponse)

    get_session_async = twins.awaiting(get_session)

    def list_sessions(
        self, limit: int = 20, offset: int = 0
    ) -> APIFuture[types.ListSessionsResponse]:
        """One page of the account's session ids."""
        return self._page("/api/v1/sessions", types.ListSessionsResponse, limit, offset)

    list_sessions_async = twins.awaiting(list_sessions)

    def get_sampler(self, sampler_id: str) -> APIFuture[types.GetSamplerResponse]:
        """Base model and weights path of a sampler."""
        sid = validation.check_id(sampler_id, "sampler_id")
        return self._send("GET", f"/api/v1/samplers/{sid}", types.GetSamplerResponse)

    get_sampler_async = twins.awaiting(get_sampler)


def _archive_url(path: str, reply: Reply) -> types.CheckpointArchiveUrlResponse:
    """The signed URL of an archive redirect (the reply of get_checkpoint_archive_url)."""
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


def _reattach(
    config: ClientConfig, session_id: str, server: ServerConfig = LEGACY_SERVER
) -> RestClient:
    return RestClient(attach(config, session_id, server=server))
