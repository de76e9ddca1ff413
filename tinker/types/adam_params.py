"""Official import path `tinker.types.adam_params`: aliases `AdamParams`, no code of its own."""

from tinker.types._optimizers import AdamParams

__all__ = ["AdamParams"]
