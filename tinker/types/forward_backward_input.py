"""Official import path `tinker.types.forward_backward_input`, no code of its own.

Aliases `Datum`, `ForwardBackwardInput`, `LossFnType`.
"""

from tinker.types._inputs import Datum
from tinker.types._losses import LossFnType
from tinker.types._training import ForwardBackwardInput

__all__ = ["Datum", "ForwardBackwardInput", "LossFnType"]
