"""Official module path: re-exports GetSessionResponse."""

from tinker.types.rest import GetSessionResponse

__all__ = ["GetSessionResponse"]
