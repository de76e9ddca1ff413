"""Official import path `tinker.types.loss_fn_output`, no code of its own.

Aliases `LossFnOutput`, `TensorData`.
"""

from tinker.types._inputs import LossFnOutput
from tinker.types._tensors import TensorData

__all__ = ["LossFnOutput", "TensorData"]
