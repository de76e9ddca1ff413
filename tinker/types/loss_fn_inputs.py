"""Official module path: re-exports LossFnInputs."""

from tinker.types.inputs import LossFnInputs

__all__ = ["LossFnInputs"]
