"""Official import path `tinker.types.tensor_dtype`: aliases `TensorDtype`, no code of its own."""

from tinker.types._tensors import TensorDtype

__all__ = ["TensorDtype"]
