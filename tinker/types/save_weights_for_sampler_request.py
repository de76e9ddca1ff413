"""Official import path `tinker.types.save_weights_for_sampler_request`, no code of its own.

Aliases `SaveWeightsForSamplerRequest`.
"""

from tinker.types._training import SaveWeightsForSamplerRequest

__all__ = ["SaveWeightsForSamplerRequest"]
