"""Official module path: re-exports Cursor."""

from tinker.types.rest import Cursor

__all__ = ["Cursor"]
