"""Session search (experimental): the request with its owner and status filters, the page of
session summaries, and the status a session is in.

Every union here is discriminated on `type`, which is always sent.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal, Union

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "AccessibleSearchOwner",
    "ActiveSessionStatusQuery",
    "CancelledSessionStatusQuery",
    "ClientFinishedSessionStatusQuery",
    "ClientSessionFinishErrored",
    "ClientSessionFinishInterrupted",
    "ClientSessionFinishReason",
    "ClientSessionFinishReasonType",
    "ClientSessionFinishSuccess",
    "ClientSessionFinished",
    "FailedSessionStatusQuery",
    "OwnSearchOwner",
    "SearchOwner",
    "SessionActive",
    "SessionCancelled",
    "SessionFailed",
    "SessionFailedReason",
    "SessionFailedRequestReason",
    "SessionFailedSamplingSessionReason",
    "SessionFailedTrainingRunReason",
    "SessionSearchCursor",
    "SessionSearchRequest",
    "SessionSearchResponse",
    "SessionStatus",
    "SessionStatusQuery",
    "SessionSummary",
    "UserSearchOwner",
]

_TYPE: frozenset[str] = frozenset({"type"})
ClientSessionFinishReasonType = Literal["success", "errored", "interrupted"]


class _Tagged(WireModel):
    """A member of a union discriminated on `type`: the tag is always sent."""

    _always_sent: ClassVar[frozenset[str]] = _TYPE


# --- search filters --------------------------------------------------------------------------


@wire
@attrs.frozen(kw_only=True)
class OwnSearchOwner(_Tagged):
    """Sessions the caller owns."""

    type: Literal["own"] = "own"


@wire
@attrs.frozen(kw_only=True)
class AccessibleSearchOwner(_Tagged):
    """Sessions the caller can see."""

    type: Literal["accessible"] = "accessible"


@wire
@attrs.frozen(kw_only=True)
class UserSearchOwner(_Tagged):
    """Sessions of the listed users (1 to 10 urns)."""

    type: Literal["user"] = "user"
    owner_urns: list[str]

    def _validate(self) -> None:
        if not 1 <= len(self.owner_urns) <= 10:
            raise ValueError(
                f"UserSearchOwner.owner_urns: 1 to 10 urns, got {len(self.owner_urns)}"
            )


SearchOwner = Union[OwnSearchOwner, AccessibleSearchOwner, UserSearchOwner]


@wire
@attrs.frozen(kw_only=True)
class ActiveSessionStatusQuery(_Tagged):
    """Match active sessions."""

    type: Literal["active"] = "active"


@wire
@attrs.frozen(kw_only=True)
class CancelledSessionStatusQuery(_Tagged):
    """Match sessions cancelled from the console."""

    type: Literal["cancelled"] = "cancelled"


@wire
@attrs.frozen(kw_only=True)
class FailedSessionStatusQuery(_Tagged):
    """Match failed sessions."""

    type: Literal["failed"] = "failed"


@wire
@attrs.frozen(kw_only=True)
class ClientFinishedSessionStatusQuery(_Tagged):
    """Match sessions their client finished, optionally only for some reasons (at least one)."""

    type: Literal["client_finished"] = "client_finished"
    reasons: list[ClientSessionFinishReasonType] | None = None

    def _validate(self) -> None:
        if self.reasons is not None and not self.reasons:
            raise ValueError("ClientFinishedSessionStatusQuery.reasons: at least one reason")


SessionStatusQuery = Union[
    ActiveSessionStatusQuery,
    CancelledSessionStatusQuery,
    FailedSessionStatusQuery,
    ClientFinishedSessionStatusQuery,
]


@wire
@attrs.define(kw_only=True)
class SessionSearchCursor(WireModel):
    """Where the next page starts (from the previous page's `next_cursor`)."""

    last_created_at: dt.datetime
    last_session_id: str


@wire
@attrs.frozen(kw_only=True)
class SessionSearchRequest(WireModel):
    """Body of POST /api/v1/sessions/search: newest first, every given filter must match."""

    session_id: str | None = None
    project_ids: list[str] | None = None
    user_metadata: dict[str, str] = attrs.Factory(dict)
    display_name: str | None = None
    owner: SearchOwner = attrs.Factory(OwnSearchOwner)
    statuses: list[SessionStatusQuery] | None = None
    limit: int = 50
    cursor: SessionSearchCursor | None = None

    def _validate(self) -> None:
        if self.display_name is not None and not self.display_name:
            raise ValueError("SessionSearchRequest.display_name: must not be empty")
        if self.statuses is not None and not self.statuses:
            raise ValueError("SessionSearchRequest.statuses: at least one status")
        if not 1 <= self.limit <= 200:
            raise ValueError(f"SessionSearchRequest.limit: must be in [1, 200], got {self.limit}")
        cursor = self.cursor
        if cursor is not None and cursor.last_created_at.tzinfo is None:
            raise ValueError("SessionSearchRequest.cursor.last_created_at: needs a time zone")


# --- statuses --------------------------------------------------------------------------------


@wire
@attrs.define(kw_only=True)
class SessionFailedRequestReason(_Tagged):
    """A session failed because of one request."""

    type: Literal["request"] = "request"
    request_id: str
    request_type: str


@wire
@attrs.define(kw_only=True)
class SessionFailedTrainingRunReason(_Tagged):
    """A session failed because of a training run."""

    type: Literal["training_run"] = "training_run"
    training_run_id: str


@wire
@attrs.define(kw_only=True)
class SessionFailedSamplingSessionReason(_Tagged):
    """A session failed because of a sampling session."""

    type: Literal["sampling_session"] = "sampling_session"
    sampling_session_id: str


SessionFailedReason = Union[
    SessionFailedRequestReason, SessionFailedTrainingRunReason, SessionFailedSamplingSessionReason
]


@wire
@attrs.define(kw_only=True)
class SessionFailed(_Tagged):
    """The session failed (`category` user or internal)."""

    type: Literal["failed"] = "failed"
    category: Literal["user", "internal"]
    reason: SessionFailedReason
    message: str


@wire
@attrs.define(kw_only=True)
class SessionCancelled(_Tagged):
    """The session was cancelled from the console."""

    type: Literal["cancelled"] = "cancelled"
    detail: str | None = None


@wire
@attrs.define(kw_only=True)
class ClientSessionFinishSuccess(_Tagged):
    """The client finished the session with success."""

    type: Literal["success"] = "success"


@wire
@attrs.define(kw_only=True)
class ClientSessionFinishErrored(_Tagged):
    """The client finished the session after an error."""

    type: Literal["errored"] = "errored"


@wire
@attrs.define(kw_only=True)
class ClientSessionFinishInterrupted(_Tagged):
    """The client finished the session when interrupted."""

    type: Literal["interrupted"] = "interrupted"


ClientSessionFinishReason = Union[
    ClientSessionFinishSuccess, ClientSessionFinishErrored, ClientSessionFinishInterrupted
]


@wire
@attrs.define(kw_only=True)
class ClientSessionFinished(_Tagged):
    """The client finished the session (ServiceClient.close)."""

    type: Literal["client_finished"] = "client_finished"
    reason: ClientSessionFinishReason
    detail: str | None = None


@wire
@attrs.define(kw_only=True)
class SessionActive(_Tagged):
    """The session is active."""

    type: Literal["active"] = "active"


SessionStatus = Union[SessionFailed, SessionCancelled, ClientSessionFinished, SessionActive]


@wire
@attrs.define(kw_only=True)
class SessionSummary(WireModel):
    """One session of a search page."""

    session_id: str
    created_at: dt.datetime
    owner: str
    project_id: str
    status: SessionStatus | None = None
    checkpoints_count: int
    display_name: str | None = None
    user_metadata: dict[str, Any] | None = None
    checkpoint_storage_bytes: int | None = None


@wire
@attrs.define(kw_only=True)
class SessionSearchResponse(WireModel):
    """A page of sessions, newest first; `next_cursor` continues the search."""

    sessions: list[SessionSummary]
    next_cursor: SessionSearchCursor | None = None
