"""Official module path: re-exports TensorData."""

from tinker.types.tensors import TensorData

__all__ = ["TensorData"]
