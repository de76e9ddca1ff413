"""Official import path `tinker.types.sampling_client_kind`, no code of its own.

Aliases `SamplingClientKind`.
"""

from tinker.types._training import SamplingClientKind

__all__ = ["SamplingClientKind"]
