"""Official module path: re-exports CreateSessionResponse."""

from tinker.types.session import CreateSessionResponse

__all__ = ["CreateSessionResponse"]
