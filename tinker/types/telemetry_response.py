"""Official module path: re-exports TelemetryResponse."""

from tinker.types.telemetry import TelemetryResponse

__all__ = ["TelemetryResponse"]
