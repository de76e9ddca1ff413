"""Official import path `tinker.types.loss_fn_output`, no code of its own.

Aliases `LossFnOutput`.
"""

from tinker.types._inputs import LossFnOutput

__all__ = ["LossFnOutput"]
