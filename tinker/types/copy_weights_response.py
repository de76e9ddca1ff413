"""Official import path `tinker.types.copy_weights_response`, no code of its own.

Aliases `CopyWeightsResponse`.
"""

from tinker.types._rest import CopyWeightsResponse

__all__ = ["CopyWeightsResponse"]
