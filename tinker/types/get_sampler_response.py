"""Official import path `tinker.types.get_sampler_response`, no code of its own.

Aliases `GetSamplerResponse`.
"""

from tinker.types._rest import GetSamplerResponse

__all__ = ["GetSamplerResponse"]
