"""Official module path: re-exports SaveWeightsResponse."""

from tinker.types.training import SaveWeightsResponse

__all__ = ["SaveWeightsResponse"]
