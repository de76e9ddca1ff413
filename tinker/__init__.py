"""tinker-sync: a sync-first SDK for the Tinker fine-tuning API.

Public names are loaded on first use, so `import tinker` stays fast and pulls in neither the
HTTP stack nor numpy until they are needed.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from tinker._distributions import warn_if_shared
from tinker._version import __version__
from tinker.errors import (
    APIConnectionError,
    APIError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    BillingError,
    ConflictError,
    ExperimentalWarning,
    InternalServerError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
    RequestErrorCategory,
    RequestFailedError,
    TinkerError,
    UnprocessableEntityError,
)

__title__ = "tinker"

if TYPE_CHECKING:  # what type checkers see; at run time these load on first use (below)
    from tinker import auth as auth
    from tinker import types as types
    from tinker._futures import APIFuture as APIFuture
    from tinker._futures import ResultTimeoutError as ResultTimeoutError
    from tinker._loss_handle import LossHandle as LossHandle
    from tinker._loss_handle import PerDatumLossFn as PerDatumLossFn
    from tinker._poller import QueueState as QueueState
    from tinker._poller import QueueStateObserver as QueueStateObserver
    from tinker._retry import RetryConfig as RetryConfig
    from tinker._workers import ClientClosedError as ClientClosedError
    from tinker.rest_client import AdminClient as AdminClient
    from tinker.rest_client import RestClient as RestClient
    from tinker.sampling_client import (
        BackcompatSamplingClientFuture as BackcompatSamplingClientFuture,
    )
    from tinker.sampling_client import SamplingClient as SamplingClient
    from tinker.service_client import ServiceClient as ServiceClient
    from tinker.training_client import (
        BackcompatTrainingClientFuture as BackcompatTrainingClientFuture,
    )
    from tinker.training_client import TrainingClient as TrainingClient
    from tinker.types import *  # noqa: F403  (every wire type is also tinker.<Name>)

warn_if_shared()  # another installed distribution (the official SDK) also provides `tinker`

# Public name -> module that defines it (imported on first attribute access).
_LAZY: dict[str, str] = {
    "ServiceClient": "tinker.service_client",
    "TrainingClient": "tinker.training_client",
    "SamplingClient": "tinker.sampling_client",
    "RestClient": "tinker.rest_client",
    "AdminClient": "tinker.rest_client",
    "BackcompatTrainingClientFuture": "tinker.training_client",
    "BackcompatSamplingClientFuture": "tinker.sampling_client",
    "APIFuture": "tinker._futures",
    "ResultTimeoutError": "tinker._futures",
    "LossHandle": "tinker._loss_handle",
    "PerDatumLossFn": "tinker._loss_handle",
    "ClientClosedError": "tinker._workers",
    "QueueState": "tinker._poller",
    "QueueStateObserver": "tinker._poller",
    "RetryConfig": "tinker._retry",
}

# Wire types re-exported at the top level, as the official SDKs do (loaded with tinker.types).
_TOP_LEVEL_TYPES = (
    "AdamOptimizerConfig",
    "AdamParams",
    "Checkpoint",
    "CheckpointType",
    "Datum",
    "DimuonOptimizerConfig",
    "DimuonParams",
    "DmelChunk",
    "EncodedTextChunk",
    "ForwardBackwardOutput",
    "LoraConfig",
    "ModelID",
    "ModelInput",
    "ModelInputChunk",
    "OptimParams",
    "OptimStepRequest",
    "OptimStepResponse",
    "ParsedCheckpointTinkerPath",
    "PromptProvenanceSpan",
    "SampleRequest",
    "SampleResponse",
    "SampledProvenanceSpan",
    "SampledSequence",
    "SamplingParams",
    "StopReason",
    "TensorData",
    "TensorDtype",
    "TrainingRun",
)

__all__ = [
    "APIConnectionError",
    "APIError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AuthenticationError",
    "BadRequestError",
    "BillingError",
    "ConflictError",
    "ExperimentalWarning",
    "InternalServerError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestErrorCategory",
    "RequestFailedError",
    "TinkerError",
    "UnprocessableEntityError",
    "__title__",
    "__version__",
    "auth",
    "types",
    *_LAZY,
    *_TOP_LEVEL_TYPES,
]


def __getattr__(name: str) -> Any:
    if name in ("types", "auth"):
        return importlib.import_module(f"tinker.{name}")
    module_name = _LAZY.get(name)
    if module_name is not None:
        value = getattr(importlib.import_module(module_name), name)
    else:
        # Every wire type is also reachable as tinker.<Name>, like tinker.types.<Name>.
        types_module = importlib.import_module("tinker.types")
        if name.startswith("_") or not hasattr(types_module, name):
            raise AttributeError(f"module 'tinker' has no attribute {name!r}")
        value = getattr(types_module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
