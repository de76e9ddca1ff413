"""Official module path: re-exports ForwardBackwardOutput."""

from tinker.types.training import ForwardBackwardOutput

__all__ = ["ForwardBackwardOutput"]
