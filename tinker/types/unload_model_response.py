"""Official import path `tinker.types.unload_model_response`, no code of its own.

Aliases `UnloadModelResponse`.
"""

from tinker.types._training import UnloadModelResponse

__all__ = ["UnloadModelResponse"]
