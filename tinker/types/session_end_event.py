"""Official import path `tinker.types.session_end_event`, no code of its own.

Aliases `EventType`, `SessionEndEvent`, `Severity`.
"""

from tinker.types._events import EventType, SessionEndEvent, Severity

__all__ = ["EventType", "SessionEndEvent", "Severity"]
