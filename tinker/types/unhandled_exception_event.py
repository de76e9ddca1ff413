"""Official module path: re-exports UnhandledExceptionEvent."""

from tinker.types.telemetry import UnhandledExceptionEvent

__all__ = ["UnhandledExceptionEvent"]
