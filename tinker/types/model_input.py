"""Official module path: re-exports ModelInput."""

from tinker.types.inputs import ModelInput

__all__ = ["ModelInput"]
