"""Official import path `tinker.types.event_type`: aliases `EventType`, no code of its own."""

from tinker.types._events import EventType

__all__ = ["EventType"]
