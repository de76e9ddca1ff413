"""Official import path `tinker.types.loss_fn_type`: aliases `LossFnType`, no code of its own."""

from tinker.types._losses import LossFnType

__all__ = ["LossFnType"]
