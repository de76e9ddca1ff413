"""Official import path `tinker.types.unhandled_exception_event`, no code of its own.

Aliases `EventType`, `Severity`, `UnhandledExceptionEvent`.
"""

from tinker.types._events import EventType, Severity, UnhandledExceptionEvent

__all__ = ["EventType", "Severity", "UnhandledExceptionEvent"]
