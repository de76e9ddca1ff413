"""Official module path: re-exports LoadWeightsResponse."""

from tinker.types.training import LoadWeightsResponse

__all__ = ["LoadWeightsResponse"]
