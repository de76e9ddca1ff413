"""Official import path `tinker.types.tensor_data`, no code of its own.

Aliases `TensorData`, `TensorDtype`.
"""

from tinker.types._tensors import TensorData, TensorDtype

__all__ = ["TensorData", "TensorDtype"]
