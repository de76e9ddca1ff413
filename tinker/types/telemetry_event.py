"""Official import path `tinker.types.telemetry_event`, no code of its own.

Aliases `TelemetryEvent`.
"""

from tinker.types._events import TelemetryEvent

__all__ = ["TelemetryEvent"]
