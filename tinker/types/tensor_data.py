"""Official import path `tinker.types.tensor_data`: aliases `TensorData`, no code of its own."""

from tinker.types._tensors import TensorData

__all__ = ["TensorData"]
