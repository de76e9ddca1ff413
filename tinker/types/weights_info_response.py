"""Official import path `tinker.types.weights_info_response`, no code of its own.

Aliases `AdamOptimizerConfig`, `OptimizerConfig`, `WeightsInfoResponse`.
"""

from tinker.types._optimizers import AdamOptimizerConfig, OptimizerConfig
from tinker.types._rest import WeightsInfoResponse

__all__ = ["AdamOptimizerConfig", "OptimizerConfig", "WeightsInfoResponse"]
