"""Official module path: re-exports LoadWeightsRequest."""

from tinker.types.training import LoadWeightsRequest

__all__ = ["LoadWeightsRequest"]
