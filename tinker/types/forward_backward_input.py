"""Official module path: re-exports ForwardBackwardInput."""

from tinker.types.training import ForwardBackwardInput

__all__ = ["ForwardBackwardInput"]
