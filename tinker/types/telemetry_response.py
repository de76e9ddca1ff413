"""Official import path `tinker.types.telemetry_response`, no code of its own.

Aliases `TelemetryResponse`.
"""

from tinker.types._events import TelemetryResponse

__all__ = ["TelemetryResponse"]
