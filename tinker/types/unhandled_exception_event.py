"""Official import path `tinker.types.unhandled_exception_event`, no code of its own.

Aliases `UnhandledExceptionEvent`.
"""

from tinker.types._events import UnhandledExceptionEvent

__all__ = ["UnhandledExceptionEvent"]
