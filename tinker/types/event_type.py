"""Official module path: re-exports EventType."""

from tinker.types.telemetry import EventType

__all__ = ["EventType"]
