"""Official import path `tinker.types.session_start_event`, no code of its own.

Aliases `EventType`, `SessionStartEvent`, `Severity`.
"""

from tinker.types._events import EventType, SessionStartEvent, Severity

__all__ = ["EventType", "SessionStartEvent", "Severity"]
