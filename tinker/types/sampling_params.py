"""Official import path `tinker.types.sampling_params`, no code of its own.

Aliases `SamplingParams`.
"""

from tinker.types._sampling import SamplingParams

__all__ = ["SamplingParams"]
