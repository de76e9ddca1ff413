"""Official import path `tinker.types.prompt_alt_tokens`, no code of its own.

Aliases `PromptAltTokens`, `TensorData`.
"""

from tinker.types._sampling import PromptAltTokens
from tinker.types._tensors import TensorData

__all__ = ["PromptAltTokens", "TensorData"]
