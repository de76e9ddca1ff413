"""Official import path `tinker.types.session_end_event`, no code of its own.

Aliases `SessionEndEvent`.
"""

from tinker.types._events import SessionEndEvent

__all__ = ["SessionEndEvent"]
