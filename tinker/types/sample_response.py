"""Official import path `tinker.types.sample_response`, no code of its own.

Aliases `SampleResponse`.
"""

from tinker.types._sampling import SampleResponse

__all__ = ["SampleResponse"]
