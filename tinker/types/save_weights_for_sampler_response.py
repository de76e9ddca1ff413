"""Official module path: re-exports the save_weights_for_sampler results."""

from tinker.types.training import (
    SaveWeightsForSamplerResponse,
    SaveWeightsForSamplerResponseInternal,
)

__all__ = ["SaveWeightsForSamplerResponse", "SaveWeightsForSamplerResponseInternal"]
