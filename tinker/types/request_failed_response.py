"""Official import path `tinker.types.request_failed_response`, no code of its own.

Aliases `RequestErrorCategory`, `RequestFailedResponse`.
"""

from tinker.errors import RequestErrorCategory
from tinker.types._retrieval import RequestFailedResponse

__all__ = ["RequestErrorCategory", "RequestFailedResponse"]
