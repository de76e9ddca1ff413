"""Official import path `tinker.types.sample_request`, no code of its own.

Aliases `SampleRequest`.
"""

from tinker.types._sampling import SampleRequest

__all__ = ["SampleRequest"]
