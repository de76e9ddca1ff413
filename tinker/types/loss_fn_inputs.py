"""Official import path `tinker.types.loss_fn_inputs`, no code of its own.

Aliases `LossFnInputs`.
"""

from tinker.types._inputs import LossFnInputs

__all__ = ["LossFnInputs"]
