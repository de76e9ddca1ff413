"""Official import path `tinker.types.future_retrieve_response`, no code of its own.

Aliases `FutureRetrieveResponse`.
"""

from tinker.types._retrieval import FutureRetrieveResponse

__all__ = ["FutureRetrieveResponse"]
