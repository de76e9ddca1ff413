"""Official module path: re-exports SessionStartEvent."""

from tinker.types.telemetry import SessionStartEvent

__all__ = ["SessionStartEvent"]
