"""Official import path `tinker.types.forward_request`, no code of its own.

Aliases `ForwardBackwardInput`, `ForwardRequest`, `ModelID`.
"""

from tinker.types._retrieval import ModelID
from tinker.types._training import ForwardBackwardInput, ForwardRequest

__all__ = ["ForwardBackwardInput", "ForwardRequest", "ModelID"]
