"""Official import path `tinker.types.request_id`: aliases `RequestID`, no code of its own."""

from tinker.types._retrieval import RequestID

__all__ = ["RequestID"]
