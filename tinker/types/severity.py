"""Official import path `tinker.types.severity`: aliases `Severity`, no code of its own."""

from tinker.types._events import Severity

__all__ = ["Severity"]
