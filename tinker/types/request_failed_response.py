"""Official import path `tinker.types.request_failed_response`, no code of its own.

Aliases `RequestFailedResponse`.
"""

from tinker.types._retrieval import RequestFailedResponse

__all__ = ["RequestFailedResponse"]
