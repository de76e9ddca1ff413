"""Official import path `tinker.types.generic_event`: aliases `GenericEvent`, no code of its own."""

from tinker.types._events import GenericEvent

__all__ = ["GenericEvent"]
