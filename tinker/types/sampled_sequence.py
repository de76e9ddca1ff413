"""Official import path `tinker.types.sampled_sequence`, no code of its own.

Aliases `SampledSequence`, `StopReason`.
"""

from tinker.types._sampling import SampledSequence, StopReason

__all__ = ["SampledSequence", "StopReason"]
