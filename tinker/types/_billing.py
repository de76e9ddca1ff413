"""Admin reports: hourly billing usage, current checkpoint storage usage, and the audit log.

`GetBillingUsageRequest` checks its window where it is built (RFC 3339 bounds on the hour,
at most 14 days, not starting in the future); the rest are answers.
"""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal, Union

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._checks import parse_datetime

__all__ = [
    "AuditLogEntry",
    "AuditLogResponse",
    "BillingEventInfo",
    "BillingUsageEvent",
    "BillingUsageResponse",
    "BillingUsageSession",
    "CheckpointBillingEvent",
    "CurrentCheckpointStorageUsageItem",
    "CurrentCheckpointStorageUsageResponse",
    "GetBillingUsageRequest",
    "GetCurrentCheckpointStorageUsageRequest",
    "SamplingPrefillBillingEvent",
    "SamplingSampleBillingEvent",
    "StorageBillingEvent",
    "TrainingBillingEvent",
]

MAX_BILLING_WINDOW = dt.timedelta(days=14)


def _instant(name: str, value: dt.datetime | str) -> dt.datetime:
    """An aware datetime on the hour from a datetime or RFC 3339 text."""
    if isinstance(value, str):
        try:
            value = parse_datetime(value)
        except ValueError:
            raise ValueError(f"GetBillingUsageRequest.{name}: not RFC 3339: {value!r}") from None
    if not isinstance(value, dt.datetime):
        raise TypeError(f"GetBillingUsageRequest.{name}: expected a datetime or str, got {value!r}")
    if value.tzinfo is None:
        raise ValueError(f"GetBillingUsageRequest.{name}: needs a time zone (e.g. UTC)")
    if (value.minute, value.second, value.microsecond) != (0, 0, 0):
        raise ValueError(f"GetBillingUsageRequest.{name}: must be on the hour, got {value}")
    return value


@wire
@attrs.frozen(kw_only=True, init=False)
class GetBillingUsageRequest(WireModel):
    """The window of a billing-usage query: [starting_on, ending_before), hour-aligned, at
    most 14 days, not starting in the future."""

    starting_on: dt.datetime
    ending_before: dt.datetime

    def __init__(self, *, starting_on: dt.datetime | str, ending_before: dt.datetime | str):
        start = _instant("starting_on", starting_on)
        end = _instant("ending_before", ending_before)
        self.__attrs_init__(starting_on=start, ending_before=end)

    def __attrs_post_init__(self) -> None:
        if self.ending_before <= self.starting_on:
            raise ValueError("GetBillingUsageRequest: ending_before must be after starting_on")
        if self.ending_before - self.starting_on > MAX_BILLING_WINDOW:
            raise ValueError(
                "GetBillingUsageRequest: ending_before must be at most 14 days after starting_on"
            )
        if self.starting_on > dt.datetime.now(dt.timezone.utc):
            raise ValueError("GetBillingUsageRequest.starting_on: must not be in the future")


class _Event(WireModel):
    _always_sent: ClassVar[frozenset[str]] = frozenset({"type"})


@wire
@attrs.define(kw_only=True)
class TrainingBillingEvent(_Event):
    """Training tokens."""

    type: Literal["training"] = "training"
    token_count: int


@wire
@attrs.define(kw_only=True)
class SamplingPrefillBillingEvent(_Event):
    """Prompt tokens of sampling (cached: served from the prefix cache)."""

    type: Literal["sampling_prefill"] = "sampling_prefill"
    cached: bool
    token_count: int


@wire
@attrs.define(kw_only=True)
class SamplingSampleBillingEvent(_Event):
    """Sampled tokens."""

    type: Literal["sampling_sample"] = "sampling_sample"
    token_count: int


@wire
@attrs.define(kw_only=True)
class CheckpointBillingEvent(_Event):
    """Checkpoints saved."""

    type: Literal["checkpoint"] = "checkpoint"
    count: int


@wire
@attrs.define(kw_only=True)
class StorageBillingEvent(_Event):
    """Checkpoint storage (GB-hours; cost = rate per GB-month x GB-hours / 720)."""

    type: Literal["storage"] = "storage"
    free: bool = False
    gigabyte_hours: float


BillingEventInfo = Union[
    TrainingBillingEvent,
    SamplingPrefillBillingEvent,
    SamplingSampleBillingEvent,
    CheckpointBillingEvent,
    StorageBillingEvent,
]


@wire
@attrs.define(kw_only=True)
class BillingUsageEvent(WireModel):
    """Usage of one kind in one UTC hour (token cost = rate per million x tokens / 1e6)."""

    bucket_start: dt.datetime
    bucket_end: dt.datetime
    base_model: str | None = None
    user_id: str | None = None
    user_name: str | None = None
    session_id: str | None = None
    project_id: str | None = None
    estimated_cost_usd: float | None = None
    effective_rate_usd_per_million_tokens: float | None = None
    effective_rate_usd_per_gigabyte_month: float | None = None
    event_info: BillingEventInfo


@wire
@attrs.define(kw_only=True)
class BillingUsageSession(WireModel):
    """What the report knows of a session: its metadata."""

    user_metadata: dict[str, Any] | None = None


@wire
@attrs.define(kw_only=True)
class BillingUsageResponse(WireModel):
    """Hourly usage events, the sessions they name, and how recent the cost data is."""

    data: list[BillingUsageEvent]
    sessions: dict[str, BillingUsageSession] = attrs.Factory(dict)
    cost_data_through: dt.datetime | None = None


@wire
@attrs.frozen(kw_only=True)
class GetCurrentCheckpointStorageUsageRequest(WireModel):
    """Storage usage of one project, or of the whole organization when None."""

    project_id: str | None = None


@wire
@attrs.define(kw_only=True)
class CurrentCheckpointStorageUsageItem(WireModel):
    """Checkpoints of one project and session owner: count, size and projected cost."""

    project_id: str | None = None
    org_user_urn: str | None = None
    user_email: str | None = None
    user_name: str | None = None
    checkpoint_count: int
    size_bytes: int
    size_gigabytes: float
    estimated_monthly_cost_usd: float | None = None


@wire
@attrs.define(kw_only=True)
class CurrentCheckpointStorageUsageResponse(WireModel):
    """Current checkpoint storage, grouped by project and session owner."""

    effective_rate_usd_per_gigabyte_month: float | None = None
    data: list[CurrentCheckpointStorageUsageItem]


@wire
@attrs.define(kw_only=True)
class AuditLogEntry(WireModel):
    """One audited event (`model_id`, `tinker_path`, `purpose` are superseded by
    `event_details`)."""

    timestamp: dt.datetime
    event: str
    event_details: dict[str, Any] = attrs.Factory(dict)
    model_id: str | None = None
    tinker_path: str | None = None
    purpose: str | None = None


@wire
@attrs.define(kw_only=True)
class AuditLogResponse(WireModel):
    """The audited events of one UTC day."""

    entries: list[AuditLogEntry]
