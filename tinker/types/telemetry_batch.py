"""Official import path `tinker.types.telemetry_batch`, no code of its own.

Aliases `TelemetryBatch`, `TelemetryEvent`.
"""

from tinker.types._events import TelemetryBatch, TelemetryEvent

__all__ = ["TelemetryBatch", "TelemetryEvent"]
