"""Official module path: re-exports RequestErrorCategory."""

from tinker.errors import RequestErrorCategory

__all__ = ["RequestErrorCategory"]
