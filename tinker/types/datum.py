"""Official module path: re-exports Datum."""

from tinker.types.inputs import Datum

__all__ = ["Datum"]
