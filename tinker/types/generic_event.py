"""Official import path `tinker.types.generic_event`, no code of its own.

Aliases `EventType`, `Severity`.
"""

from tinker.types._events import EventType, Severity

__all__ = ["EventType", "Severity"]
