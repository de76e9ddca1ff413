"""Official import path `tinker.types.save_weights_request`, no code of its own.

Aliases `SaveWeightsRequest`.
"""

from tinker.types._training import SaveWeightsRequest

__all__ = ["SaveWeightsRequest"]
