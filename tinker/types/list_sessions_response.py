"""Official module path: re-exports ListSessionsResponse."""

from tinker.types.rest import ListSessionsResponse

__all__ = ["ListSessionsResponse"]
