"""Official module path: re-exports TensorDtype."""

from tinker.types.tensors import TensorDtype

__all__ = ["TensorDtype"]
