"""Official import path `tinker.types.sample_request`, no code of its own.

Aliases `ModelInput`, `SampleRequest`, `SamplingParams`.
"""

from tinker.types._inputs import ModelInput
from tinker.types._sampling import SampleRequest, SamplingParams

__all__ = ["ModelInput", "SampleRequest", "SamplingParams"]
