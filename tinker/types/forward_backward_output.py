"""Official import path `tinker.types.forward_backward_output`, no code of its own.

Aliases `ForwardBackwardOutput`, `LossFnOutput`.
"""

from tinker.types._inputs import LossFnOutput
from tinker.types._training import ForwardBackwardOutput

__all__ = ["ForwardBackwardOutput", "LossFnOutput"]
