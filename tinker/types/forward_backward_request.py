"""Official import path `tinker.types.forward_backward_request`, no code of its own.

Aliases `ForwardBackwardInput`, `ForwardBackwardRequest`, `ModelID`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import ForwardBackwardInput, ForwardBackwardRequest

__all__ = ["ForwardBackwardInput", "ForwardBackwardRequest", "ModelID"]
