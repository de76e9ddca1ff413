"""Official import path `tinker.types.telemetry_send_request`, no code of its own.

Aliases `TelemetryEvent`, `TelemetrySendRequest`.
"""

from tinker.types._events import TelemetryEvent, TelemetrySendRequest

__all__ = ["TelemetryEvent", "TelemetrySendRequest"]
