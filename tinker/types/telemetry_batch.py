"""Official module path: re-exports TelemetryBatch."""

from tinker.types.telemetry import TelemetryBatch

__all__ = ["TelemetryBatch"]
