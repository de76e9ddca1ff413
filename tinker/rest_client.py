"""RestClient: training runs, checkpoints, sessions and samplers over the REST endpoints.

Every method checks its arguments in the caller's thread and returns an APIFuture at once (the
request goes out from the runtime's submit pool, retried for up to 5 minutes); every method has
an `*_async` twin that returns the value. Checkpoint ids (`weights/<name>`,
`sampler_weights/<name>`) go into URLs with their '/'.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import email.utils
import functools
import logging
import os
import warnings
from typing import Any, Literal

from tinker import _identity as identity
from tinker import _twins as twins
from tinker import _validation as validation
from tinker import types
from tinker._calls import ApiCall
from tinker._futures import APIFuture, flatten, reject, resolve, transform
from tinker._retry import SUBMIT, TRANSPORT
from tinker._runtime import ClientBase, Runtime
from tinker._session import attach, sessionless
from tinker._transport import Reply, Traffic
from tinker._workers import ClientClosedError
from tinker.config import LEGACY_SERVER, ClientConfig, ServerConfig
from tinker.errors import ExperimentalWarning, status_error

__all__ = [
    "ARCHIVE_URL_DEFAULT_LIFETIME",
    "AUDIT_EVENT_TYPES",
    "TRACE_EXPORT_POLL_SECONDS",
    "AccessScope",
    "AdminClient",
    "AuditEventType",
    "RestBase",
    "RestClient",
]

logger = logging.getLogger(__name__)

ARCHIVE_URL_DEFAULT_LIFETIME = datetime.timedelta(minutes=15)
TRACE_EXPORT_POLL_SECONDS = 5.0
AccessScope = Literal["owned", "accessible"]
AuditEventType = Literal["all", "checkpoints", "projects", "teams", "organizations"]
AUDIT_EVENT_TYPES = ("all", "checkpoints", "projects", "teams", "organizations")


class RestBase(ClientBase):
    """What RestClient and AdminClient share: construction on the session-less runtime, and
    one REST call in the background per method."""

    def __init__(
        self,
        _holder: Runtime | None = None,
        *,
        base_url: str | None = None,
        api_key: str | None = None,
    ) -> None:
        if _holder is None:
            config = ClientConfig.from_env(base_url=base_url, api_key=api_key)
            _holder = sessionless(config)
        elif base_url is not None or api_key is not None:
            raise ValueError("pass either a runtime or base_url/api_key to RestClient, not both")
        super().__init__(_holder)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self._runtime.config.base_url!r})"

    def __reduce__(self) -> tuple[Any, ...]:
        runtime = self._runtime
        return (
            _reattach,
            (type(self), runtime.portable_config(), runtime.session_id, runtime.server),
        )

    def _send(
        self,
        method: str,
        path: str,
        result: type[Any] | None,
        *,
        params: dict[str, object] | None = None,
        body: object | None = None,
        headers: dict[str, str] | None = None,
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
            headers=headers,
        )
        return self._runtime.operation(flatten(self._runtime.submit(call)))

    def _page(
        self,
        path: str,
        result: type[Any],
        limit: object,
        offset: object,
        extra: dict[str, object] | None = None,
    ) -> APIFuture[Any]:
        """One page (`limit` >= 1 items from `offset` >= 0) of a list resource."""
        limit, offset = validation.check_page(limit, offset)
        params = {"limit": limit, "offset": offset, **(extra or {})}
        return self._send("GET", path, result, params=params)


class RestClient(RestBase):
    """Read and manage the account's training runs, checkpoints, sessions and samplers.

    `RestClient(base_url=..., api_key=...)` (each else from the environment) needs no
    ServiceClient and creates no session: every RestClient of one server and key shares one
    process-wide runtime. `ServiceClient.create_rest_client()` gives the same.
    """

    def get_server_capabilities(self) -> APIFuture[types.GetServerCapabilitiesResponse]:
        """The models this service can train and sample."""
        return self._send(
            "GET", "/api/v1/get_server_capabilities", types.GetServerCapabilitiesResponse
        )

    get_server_capabilities_async = twins.awaiting(get_server_capabilities)

    def get_training_run(
        self, training_run_id: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[types.TrainingRun]:
        """The training run `training_run_id` (a model id); NotFoundError if there is none.
        `access_scope="accessible"` also finds runs shared with the caller."""
        run_id = validation.check_id(training_run_id, "training_run_id")
        params = validation.check_access_scope(access_scope)
        return self._send(
            "GET", f"/api/v1/training_runs/{run_id}", types.TrainingRun, params=params
        )

    get_training_run_async = twins.awaiting(get_training_run)

    def get_training_run_by_tinker_path(
        self, tinker_path: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[types.TrainingRun]:
        """The training run that a `tinker://` checkpoint path belongs to."""
        parsed = validation.check_checkpoint_path(tinker_path)
        return self.get_training_run(parsed.training_run_id, access_scope)

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
        self,
        limit: int = 20,
        offset: int = 0,
        access_scope: AccessScope = "owned",
        project_id: str | None = None,
    ) -> APIFuture[types.TrainingRunsResponse]:
        """One page of the account's training runs (`limit` >= 1 from `offset` >= 0), with
        the cursor to the next; only those of `project_id` when given."""
        extra = validation.check_access_scope(access_scope)
        if validation.check_optional_str(project_id, "project_id") is not None:
            extra["project_id"] = project_id
        return self._page("/api/v1/training_runs", types.TrainingRunsResponse, limit, offset, extra)

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

    def get_session(
        self, session_id: str, access_scope: AccessScope = "owned"
    ) -> APIFuture[types.GetSessionResponse]:
        """The training runs and samplers of a session."""
        sid = validation.check_id(session_id, "session_id")
        params = validation.check_access_scope(access_scope)
        return self._send("GET", f"/api/v1/sessions/{sid}", types.GetSessionResponse, params=params)

    get_session_async = twins.awaiting(get_session)

    def list_sessions(
        self, limit: int = 20, offset: int = 0, access_scope: AccessScope = "owned"
    ) -> APIFuture[types.ListSessionsResponse]:
        """One page of the account's session ids."""
        extra = validation.check_access_scope(access_scope)
        return self._page("/api/v1/sessions", types.ListSessionsResponse, limit, offset, extra)

    list_sessions_async = twins.awaiting(list_sessions)

    def assign_session_project(self, session_id: str, project_id: str) -> APIFuture[None]:
        """Move a session (and its training runs and samplers) into the project `project_id`."""
        sid = validation.check_id(session_id, "session_id")
        project = validation.check_id(project_id, "project_id")
        return self._send(
            "PUT", f"/api/v1/sessions/{sid}/project", None, body={"project_id": project}
        )

    assign_session_project_async = twins.awaiting(assign_session_project)

    def copy_weights(
        self,
        path: str,
        destination_project_id: str | None = None,
        *,
        ttl_seconds: int | None = None,
        weights_access_token: str | None = None,
    ) -> APIFuture[str]:
        """Copy the checkpoint `path` into the project `destination_project_id` (else
        TINKER_PROJECT_ID; ValueError if neither); the copy shares the files and belongs to a
        new run that cannot be trained. The future's value is the copy's `tinker://` path."""
        source = validation.check_tinker_path(path)
        ttl = validation.check_ttl(ttl_seconds)
        token = validation.check_optional_str(weights_access_token, "weights_access_token")
        if destination_project_id is None:
            destination_project_id = os.environ.get("TINKER_PROJECT_ID") or None
        if destination_project_id is None:
            raise ValueError(
                "copy_weights needs a destination project: pass destination_project_id "
                "(ServiceClient: project_id) or set TINKER_PROJECT_ID"
            )
        project = validation.check_id(destination_project_id, "destination_project_id")
        body: dict[str, object] = {"source_path": source, "destination_project_id": project}
        if ttl is not None:
            body["ttl_seconds"] = ttl
        headers = {} if token is None else {"X-Tinker-Weights-Access-Token": token}
        copied = self._send("POST", "/api/v1/copy_weights", None, body=body, headers=headers)
        return transform(copied, _copied_path)

    copy_weights_async = twins.awaiting(copy_weights)

    def get_external_weights_urls(
        self, tinker_path: str
    ) -> APIFuture[types.ExternalWeightsUrlsResponse]:
        """Signed download URLs of every file of a `tinker://<run>/external_weights/<name>`
        export (see TrainingClient.save_weights_external), and when they expire."""
        parsed = validation.check_checkpoint_path(tinker_path)
        if not parsed.checkpoint_id.startswith("external_weights/"):
            raise ValueError(
                "tinker_path must be a tinker://<run>/external_weights/<name> path "
                f"(get_external_weights_urls), got {tinker_path!r}"
            )
        path = (
            f"/api/v1/training_runs/{parsed.training_run_id}"
            f"/checkpoints/{parsed.checkpoint_id}/external_weights_urls"
        )
        return self._send("GET", path, types.ExternalWeightsUrlsResponse)

    get_external_weights_urls_async = twins.awaiting(get_external_weights_urls)

    def export_session_trace(self, session_id: str) -> APIFuture[str]:
        """A signed URL (valid about an hour, plain GET) of a Perfetto trace of the session's
        training and sampling requests. The server builds it on the first call: the future
        asks again every 5 s until it is ready (one log line says it waits), and fails with
        RuntimeError if the build fails."""
        sid = validation.check_id(session_id, "session_id")
        export: APIFuture[str] = APIFuture()
        _TraceExport(self, sid, export).ask()
        return self._runtime.operation(export)

    export_session_trace_async = twins.awaiting(export_session_trace)

    def search_sessions(
        self, request: types.SessionSearchRequest
    ) -> APIFuture[types.SessionSearchResponse]:
        """Sessions of the organisation matching `request`, newest first (experimental: warns
        with ExperimentalWarning); pass `next_cursor` back as `request.cursor` for more."""
        if not isinstance(request, types.SessionSearchRequest):
            raise TypeError(f"request must be a SessionSearchRequest, got {type(request).__name__}")
        warnings.warn(
            "RestClient.search_sessions is experimental and may change",
            ExperimentalWarning,
            stacklevel=2,
        )
        return self._send(
            "POST", "/api/v1/sessions/search", types.SessionSearchResponse, body=request
        )

    search_sessions_async = twins.awaiting(search_sessions)

    def get_billing_usage(
        self, starting_on: datetime.datetime | str, ending_before: datetime.datetime | str
    ) -> APIFuture[types.BillingUsageResponse]:
        """The same as AdminClient.get_billing_usage (kept for code that calls it here)."""
        return AdminClient(self._runtime).get_billing_usage(starting_on, ending_before)

    get_billing_usage_async = twins.awaiting(get_billing_usage)

    def get_current_checkpoint_storage_usage(
        self, project_id: str | None = None
    ) -> APIFuture[types.CurrentCheckpointStorageUsageResponse]:
        """The same as AdminClient.get_current_checkpoint_storage_usage."""
        return AdminClient(self._runtime).get_current_checkpoint_storage_usage(project_id)

    get_current_checkpoint_storage_usage_async = twins.awaiting(
        get_current_checkpoint_storage_usage
    )

    def get_audit_log(
        self, event_type: AuditEventType = "all", day: datetime.date | None = None
    ) -> APIFuture[types.AuditLogResponse]:
        """The same as AdminClient.get_audit_log."""
        return AdminClient(self._runtime).get_audit_log(event_type, day)

    get_audit_log_async = twins.awaiting(get_audit_log)

    def whoami(self) -> APIFuture[types.WhoamiResponse]:
        """The user, organization and email of the credential, read from its access token (no
        request of its own). Fails with RuntimeError when the server does not use JWT auth and
        the credential is a plain API key."""
        return self._runtime.spawn(identity.whoami, self._runtime)

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


class _TraceExport:
    """Asks for a session's trace export until it is ready, each wait a timer entry."""

    def __init__(self, client: RestClient, session_id: str, export: APIFuture[str]) -> None:
        self.client = client
        self.session_id = session_id
        self.export = export
        self.waited = False

    def ask(self) -> None:
        if self.export.done():
            return
        path = f"/api/v1/sessions/{self.session_id}/trace_export"
        self.client._send("GET", path, None).add_done_callback(self.answered)

    def answered(self, reply: concurrent.futures.Future[Any]) -> None:
        if reply.cancelled() or (exc := reply.exception()) is not None:
            reject(self.export, exc or concurrent.futures.CancelledError())
            return
        answer = reply.result()
        status = answer.get("status") if isinstance(answer, dict) else None
        if status == "ready" and isinstance(answer.get("url"), str):
            resolve(self.export, answer["url"])
        elif status == "failed":
            reason = answer.get("error") or "no reason given"
            reject(self.export, RuntimeError(f"trace export of {self.session_id} failed: {reason}"))
        elif status == "pending":
            if not self.waited:
                self.waited = True
                logger.warning("Building trace export of session %s...", self.session_id)
            if not self.client._runtime.timers.call_later(TRACE_EXPORT_POLL_SECONDS, self.ask):
                reject(self.export, ClientClosedError("the client was closed during the export"))
        else:
            reject(self.export, ValueError(f"trace_export answered {answer!r}"))


class AdminClient(RestBase):
    """The organisation's billing usage, checkpoint storage and audit log (an admin or
    billing-admin role is needed); constructed like RestClient, on the same shared runtime."""

    def get_billing_usage(
        self, starting_on: datetime.datetime | str, ending_before: datetime.datetime | str
    ) -> APIFuture[types.BillingUsageResponse]:
        """Hourly usage events in [starting_on, ending_before): RFC 3339 strings or datetimes,
        hour-aligned, at most 14 days apart, the start not in the future."""
        window = types.GetBillingUsageRequest(starting_on=starting_on, ending_before=ending_before)
        params: dict[str, object] = {
            "starting_on": _rfc3339(window.starting_on),
            "ending_before": _rfc3339(window.ending_before),
        }
        return self._send(
            "GET", "/api/v1/billing/usage/events", types.BillingUsageResponse, params=params
        )

    get_billing_usage_async = twins.awaiting(get_billing_usage)

    def get_current_checkpoint_storage_usage(
        self, project_id: str | None = None
    ) -> APIFuture[types.CurrentCheckpointStorageUsageResponse]:
        """Checkpoint count, size and projected monthly cost per project and owner (of
        `project_id` only when given)."""
        project = validation.check_optional_str(project_id, "project_id")
        return self._send(
            "GET",
            "/api/v1/billing/usage/checkpoints/current",
            types.CurrentCheckpointStorageUsageResponse,
            params={} if project is None else {"project_id": project},
        )

    get_current_checkpoint_storage_usage_async = twins.awaiting(
        get_current_checkpoint_storage_usage
    )

    def get_audit_log(
        self, event_type: AuditEventType = "all", day: datetime.date | None = None
    ) -> APIFuture[types.AuditLogResponse]:
        """The audit log of one UTC day (default today), of one kind of event or all."""
        if event_type not in AUDIT_EVENT_TYPES:
            raise ValueError(
                f"event_type must be one of {', '.join(AUDIT_EVENT_TYPES)}; got {event_type!r}"
            )
        params: dict[str, object] = {"event_type": event_type}
        if day is not None:
            if not isinstance(day, datetime.date) or isinstance(day, datetime.datetime):
                raise TypeError(f"day must be a datetime.date or None, got {day!r}")
            params["day"] = day.isoformat()
        return self._send("GET", "/api/v1/audit", types.AuditLogResponse, params=params)

    get_audit_log_async = twins.awaiting(get_audit_log)


def _rfc3339(moment: datetime.datetime) -> str:
    """A UTC datetime as the billing queries take it, e.g. 2026-01-01T00:00:00Z."""
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _copied_path(answer: object) -> str:
    """The `tinker_path` of a copy_weights answer."""
    path = answer.get("tinker_path") if isinstance(answer, dict) else None
    if not isinstance(path, str):
        raise ValueError(f"copy_weights answered without a tinker_path: {answer!r}")
    return path


def _reattach(
    cls: type[RestBase],
    config: ClientConfig,
    session_id: str,
    server: ServerConfig = LEGACY_SERVER,
) -> RestBase:
    """A RestClient of `cls` on the same session (or the session-less runtime) elsewhere."""
    runtime = attach(config, session_id, server=server) if session_id else sessionless(config)
    return cls(runtime)
