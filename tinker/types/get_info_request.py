"""Official module path: re-exports GetInfoRequest."""

from tinker.types.training import GetInfoRequest

__all__ = ["GetInfoRequest"]
