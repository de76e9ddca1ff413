"""Telemetry events and the batch sent to POST /api/v1/telemetry."""

from __future__ import annotations

import datetime as dt
from typing import Any, ClassVar, Literal, Union

import attrs

from tinker.types._base import WireModel, wire

__all__ = [
    "EventType",
    "GenericEvent",
    "SessionEndEvent",
    "SessionStartEvent",
    "Severity",
    "TelemetryBatch",
    "TelemetryEvent",
    "TelemetryResponse",
    "TelemetrySendRequest",
    "UnhandledExceptionEvent",
]

EventType = Literal["SESSION_START", "SESSION_END", "UNHANDLED_EXCEPTION", "GENERIC_EVENT"]
Severity = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_EVENT: frozenset[str] = frozenset({"event"})


@wire
@attrs.frozen(kw_only=True)
class SessionStartEvent(WireModel):
    """The session started (queued when telemetry starts)."""

    _always_sent: ClassVar[frozenset[str]] = _EVENT
    event: Literal["SESSION_START"] = "SESSION_START"
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime


@wire
@attrs.frozen(kw_only=True)
class SessionEndEvent(WireModel):
    """The session ended after a fatal error; `duration` is str(timedelta)."""

    _always_sent: ClassVar[frozenset[str]] = _EVENT
    duration: str
    event: Literal["SESSION_END"] = "SESSION_END"
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime


@wire
@attrs.frozen(kw_only=True)
class UnhandledExceptionEvent(WireModel):
    """An exception escaped a public SDK method and was not a user error."""

    _always_sent: ClassVar[frozenset[str]] = _EVENT
    error_message: str
    error_type: str
    event: Literal["UNHANDLED_EXCEPTION"] = "UNHANDLED_EXCEPTION"
    event_id: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    traceback: str | None = None


@wire
@attrs.frozen(kw_only=True)
class GenericEvent(WireModel):
    """A named diagnostic event with free-form data."""

    _always_sent: ClassVar[frozenset[str]] = _EVENT
    event: Literal["GENERIC_EVENT"] = "GENERIC_EVENT"
    event_id: str
    event_name: str
    event_session_index: int
    severity: Severity
    timestamp: dt.datetime
    event_data: dict[str, Any] = attrs.field(factory=dict)


TelemetryEvent = Union[SessionStartEvent, SessionEndEvent, UnhandledExceptionEvent, GenericEvent]


@wire
@attrs.frozen(kw_only=True)
class TelemetrySendRequest(WireModel):
    """Body of POST /api/v1/telemetry: a batch of 1 to 100 events."""

    events: list[TelemetryEvent]
    platform: str
    sdk_version: str
    session_id: str


TelemetryBatch = TelemetrySendRequest


@wire
@attrs.define(kw_only=True)
class TelemetryResponse(WireModel):
    """Answer of telemetry; the status must be exactly "accepted"."""

    status: Literal["accepted"]
