"""Official import path `tinker.types.save_weights_for_sampler_request`, no code of its own.

Aliases `ModelID`, `SamplingClientKind`, `SaveWeightsForSamplerRequest`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import SamplingClientKind, SaveWeightsForSamplerRequest

__all__ = ["ModelID", "SamplingClientKind", "SaveWeightsForSamplerRequest"]
