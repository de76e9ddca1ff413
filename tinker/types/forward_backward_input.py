"""Official import path `tinker.types.forward_backward_input`, no code of its own.

Aliases `ForwardBackwardInput`.
"""

from tinker.types._training import ForwardBackwardInput

__all__ = ["ForwardBackwardInput"]
