"""Official import path `tinker.types.weights_info_response`, no code of its own.

Aliases `WeightsInfoResponse`.
"""

from tinker.types._rest import WeightsInfoResponse

__all__ = ["WeightsInfoResponse"]
