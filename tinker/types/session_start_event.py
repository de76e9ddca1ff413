"""Official import path `tinker.types.session_start_event`, no code of its own.

Aliases `SessionStartEvent`.
"""

from tinker.types._events import SessionStartEvent

__all__ = ["SessionStartEvent"]
