"""Official import path `tinker.types.loss_fn_inputs`, no code of its own.

Aliases `LossFnInputs`, `TensorData`.
"""

from tinker.types._inputs import LossFnInputs
from tinker.types._tensors import TensorData

__all__ = ["LossFnInputs", "TensorData"]
