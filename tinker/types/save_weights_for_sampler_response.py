"""Official import path `tinker.types.save_weights_for_sampler_response`, no code of its own.

Aliases `SaveWeightsForSamplerResponse`, `SaveWeightsForSamplerResponseInternal`.
"""

from tinker.types._training import (
    SaveWeightsForSamplerResponse,
    SaveWeightsForSamplerResponseInternal,
)

__all__ = ["SaveWeightsForSamplerResponse", "SaveWeightsForSamplerResponseInternal"]
