"""Official module path: re-exports ForwardRequest."""

from tinker.types.training import ForwardRequest

__all__ = ["ForwardRequest"]
