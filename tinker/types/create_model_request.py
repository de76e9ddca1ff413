"""Official module path: re-exports CreateModelRequest."""

from tinker.types.training import CreateModelRequest

__all__ = ["CreateModelRequest"]
