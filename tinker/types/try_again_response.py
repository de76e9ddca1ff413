"""Official import path `tinker.types.try_again_response`, no code of its own.

Aliases `TryAgainResponse`.
"""

from tinker.types._retrieval import TryAgainResponse

__all__ = ["TryAgainResponse"]
