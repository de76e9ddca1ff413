"""Official module path: re-exports CreateSessionRequest."""

from tinker.types.session import CreateSessionRequest

__all__ = ["CreateSessionRequest"]
