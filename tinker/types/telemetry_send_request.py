"""Official import path `tinker.types.telemetry_send_request`, no code of its own.

Aliases `TelemetrySendRequest`.
"""

from tinker.types._events import TelemetrySendRequest

__all__ = ["TelemetrySendRequest"]
