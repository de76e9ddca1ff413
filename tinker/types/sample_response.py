"""Official import path `tinker.types.sample_response`, no code of its own.

Aliases `PromptAltTokens`, `SampleResponse`, `SampledSequence`, `TensorData`.
"""

from tinker.types._sampling import PromptAltTokens, SampledSequence, SampleResponse
from tinker.types._tensors import TensorData

__all__ = ["PromptAltTokens", "SampleResponse", "SampledSequence", "TensorData"]
