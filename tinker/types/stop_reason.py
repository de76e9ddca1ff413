"""Official import path `tinker.types.stop_reason`: aliases `StopReason`, no code of its own."""

from tinker.types._sampling import StopReason

__all__ = ["StopReason"]
