"""Official import path `tinker.types.telemetry_event`, no code of its own.

Aliases `SessionEndEvent`, `SessionStartEvent`, `TelemetryEvent`, `UnhandledExceptionEvent`.
"""

from tinker.types._events import (
    SessionEndEvent,
    SessionStartEvent,
    TelemetryEvent,
    UnhandledExceptionEvent,
)

__all__ = ["SessionEndEvent", "SessionStartEvent", "TelemetryEvent", "UnhandledExceptionEvent"]
