"""Official import path `tinker.types.forward_request`, no code of its own.

Aliases `ForwardRequest`.
"""

from tinker.types._training import ForwardRequest

__all__ = ["ForwardRequest"]
