"""Official import path `tinker.types.load_weights_request`, no code of its own.

Aliases `LoadWeightsRequest`.
"""

from tinker.types._training import LoadWeightsRequest

__all__ = ["LoadWeightsRequest"]
