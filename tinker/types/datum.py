"""Official import path `tinker.types.datum`: aliases `Datum`, no code of its own."""

from tinker.types._inputs import Datum

__all__ = ["Datum"]
