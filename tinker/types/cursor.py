"""Official import path `tinker.types.cursor`: aliases `Cursor`, no code of its own."""

from tinker.types._rest import Cursor

__all__ = ["Cursor"]
