"""Official import path `tinker.types.save_weights_response`, no code of its own.

Aliases `ParsedCheckpointTinkerPath`, `SaveWeightsResponse`.
"""

from tinker.types._paths import ParsedCheckpointTinkerPath
from tinker.types._training import SaveWeightsResponse

__all__ = ["ParsedCheckpointTinkerPath", "SaveWeightsResponse"]
