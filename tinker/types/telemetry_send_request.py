"""Official module path: re-exports TelemetrySendRequest."""

from tinker.types.telemetry import TelemetrySendRequest

__all__ = ["TelemetrySendRequest"]
