"""Official module path: re-exports SessionHeartbeatResponse."""

from tinker.types.session import SessionHeartbeatResponse

__all__ = ["SessionHeartbeatResponse"]
