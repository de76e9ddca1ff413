"""Official import path `tinker.types.save_weights_response`, no code of its own.

Aliases `SaveWeightsResponse`.
"""

from tinker.types._training import SaveWeightsResponse

__all__ = ["SaveWeightsResponse"]
