"""Official module path: re-exports LossFnOutput."""

from tinker.types.inputs import LossFnOutput

__all__ = ["LossFnOutput"]
