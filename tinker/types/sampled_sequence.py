"""Official import path `tinker.types.sampled_sequence`, no code of its own.

Aliases `SampledSequence`.
"""

from tinker.types._sampling import SampledSequence

__all__ = ["SampledSequence"]
