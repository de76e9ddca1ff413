"""Official module path: re-exports GenericEvent."""

from tinker.types.telemetry import GenericEvent

__all__ = ["GenericEvent"]
