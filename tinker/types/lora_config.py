"""Official module path: re-exports LoraConfig."""

from tinker.types.training import LoraConfig

__all__ = ["LoraConfig"]
