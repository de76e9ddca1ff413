"""Official import path `tinker.types.create_sampling_session_request`, no code of its own.

Aliases `CreateSamplingSessionRequest`.
"""

from tinker.types._sampling import CreateSamplingSessionRequest

__all__ = ["CreateSamplingSessionRequest"]
