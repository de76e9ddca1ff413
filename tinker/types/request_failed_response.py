"""Official import path `tinker.types.request_failed_response`, no code of its own.

Aliases `RequestErrorCategory`, `RequestFailedResponse`.
"""

from tinker.types._retrieval import RequestErrorCategory, RequestFailedResponse

__all__ = ["RequestErrorCategory", "RequestFailedResponse"]
