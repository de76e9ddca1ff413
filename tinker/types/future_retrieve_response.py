"""Official import path `tinker.types.future_retrieve_response`, no code of its own.

Aliases `CreateModelResponse`, `ForwardBackwardOutput`, `FutureRetrieveResponse`,
`LoadWeightsResponse`, `OptimStepResponse`, `RequestFailedResponse`, `SaveWeightsExternalResponse`,
`SaveWeightsForSamplerResponse`, `SaveWeightsResponse`, `UnloadModelResponse`.
"""

from tinker.types._retrieval import FutureRetrieveResponse, RequestFailedResponse
from tinker.types._training import (
    CreateModelResponse,
    ForwardBackwardOutput,
    LoadWeightsResponse,
    OptimStepResponse,
    SaveWeightsExternalResponse,
    SaveWeightsForSamplerResponse,
    SaveWeightsResponse,
    UnloadModelResponse,
)

__all__ = [
    "CreateModelResponse",
    "ForwardBackwardOutput",
    "FutureRetrieveResponse",
    "LoadWeightsResponse",
    "OptimStepResponse",
    "RequestFailedResponse",
    "SaveWeightsExternalResponse",
    "SaveWeightsForSamplerResponse",
    "SaveWeightsResponse",
    "UnloadModelResponse",
]
