"""Official import path `tinker.types.future_retrieve_request`, no code of its own.

Aliases `FutureRetrieveRequest`, `RequestID`.
"""

from tinker.types._retrieval import FutureRetrieveRequest, RequestID

__all__ = ["FutureRetrieveRequest", "RequestID"]
