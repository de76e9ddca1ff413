"""Official module path: re-exports Severity."""

from tinker.types.telemetry import Severity

__all__ = ["Severity"]
