"""Official module path: re-exports SessionHeartbeatRequest."""

from tinker.types.session import SessionHeartbeatRequest

__all__ = ["SessionHeartbeatRequest"]
