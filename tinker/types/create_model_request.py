"""Official import path `tinker.types.create_model_request`, no code of its own.

Aliases `CreateModelRequest`.
"""

from tinker.types._training import CreateModelRequest

__all__ = ["CreateModelRequest"]
