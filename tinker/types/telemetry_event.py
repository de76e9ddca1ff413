"""Official module path: re-exports TelemetryEvent."""

from tinker.types.telemetry import TelemetryEvent

__all__ = ["TelemetryEvent"]
