"""Official import path `tinker.types.future_retrieve_request`, no code of its own.

Aliases `FutureRetrieveRequest`.
"""

from tinker.types._retrieval import FutureRetrieveRequest

__all__ = ["FutureRetrieveRequest"]
