"""Official module path: re-exports ForwardBackwardRequest."""

from tinker.types.training import ForwardBackwardRequest

__all__ = ["ForwardBackwardRequest"]
