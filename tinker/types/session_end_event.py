"""Official module path: re-exports SessionEndEvent."""

from tinker.types.telemetry import SessionEndEvent

__all__ = ["SessionEndEvent"]
