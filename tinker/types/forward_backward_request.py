"""Official import path `tinker.types.forward_backward_request`, no code of its own.

Aliases `ForwardBackwardRequest`.
"""

from tinker.types._training import ForwardBackwardRequest

__all__ = ["ForwardBackwardRequest"]
