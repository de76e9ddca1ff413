"""Official import path `tinker.types.copy_weights_request`, no code of its own.

Aliases `CopyWeightsRequest`.
"""

from tinker.types._rest import CopyWeightsRequest

__all__ = ["CopyWeightsRequest"]
