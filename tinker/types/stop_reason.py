"""Official module path: re-exports StopReason."""

from tinker.types.sampling import StopReason

__all__ = ["StopReason"]
