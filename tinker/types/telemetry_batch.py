"""Official import path `tinker.types.telemetry_batch`, no code of its own.

Aliases `TelemetryBatch`.
"""

from tinker.types._events import TelemetryBatch

__all__ = ["TelemetryBatch"]
