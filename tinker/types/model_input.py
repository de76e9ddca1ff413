"""Official import path `tinker.types.model_input`: aliases `ModelInput`, no code of its own."""

from tinker.types._inputs import ModelInput

__all__ = ["ModelInput"]
