"""Official import path `tinker.types.save_weights_external_response`, no code of its own.

Aliases `SaveWeightsExternalResponse`, `SaveWeightsExternalResponseInternal`.
"""

from tinker.types._training import SaveWeightsExternalResponse, SaveWeightsExternalResponseInternal

__all__ = ["SaveWeightsExternalResponse", "SaveWeightsExternalResponseInternal"]
