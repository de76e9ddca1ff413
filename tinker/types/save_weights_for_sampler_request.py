"""Official module path: re-exports SaveWeightsForSamplerRequest."""

from tinker.types.training import SaveWeightsForSamplerRequest

__all__ = ["SaveWeightsForSamplerRequest"]
