"""Official module path: re-exports SaveWeightsRequest."""

from tinker.types.training import SaveWeightsRequest

__all__ = ["SaveWeightsRequest"]
