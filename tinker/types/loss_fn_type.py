"""Official module path: re-exports LossFnType."""

from tinker.types.losses import LossFnType

__all__ = ["LossFnType"]
