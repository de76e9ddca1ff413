"""Official import path `tinker.types.unload_model_request`, no code of its own.

Aliases `UnloadModelRequest`.
"""

from tinker.types._training import UnloadModelRequest

__all__ = ["UnloadModelRequest"]
