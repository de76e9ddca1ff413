"""Official import path `tinker.types.create_sampling_session_response`, no code of its own.

Aliases `CreateSamplingSessionResponse`.
"""

from tinker.types._sampling import CreateSamplingSessionResponse

__all__ = ["CreateSamplingSessionResponse"]
