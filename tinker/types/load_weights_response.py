"""Official import path `tinker.types.load_weights_response`, no code of its own.

Aliases `LoadWeightsResponse`.
"""

from tinker.types._training import LoadWeightsResponse

__all__ = ["LoadWeightsResponse"]
