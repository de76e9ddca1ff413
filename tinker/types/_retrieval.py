"""Server-side futures: the submit answer, the poll request, and the pending/failed bodies."""

from __future__ import annotations

from typing import ClassVar, Literal, Union

import attrs

from tinker.errors import RequestErrorCategory
from tinker.types._base import WireModel, wire
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
    "FutureRetrieveRequest",
    "FutureRetrieveResponse",
    "ModelID",
    "RequestFailedResponse",
    "RequestID",
    "TryAgainResponse",
    "UntypedAPIFuture",
]

ModelID = str
RequestID = str


@wire
@attrs.define(kw_only=True)
class UntypedAPIFuture(WireModel):
    """Answer of every future-returning submit: the id to poll; a sample's answer also has
    one sequence id per requested sample."""

    request_id: RequestID
    model_id: ModelID | None = None
    sample_sequence_ids: list[str] | None = None


@wire
@attrs.frozen(kw_only=True)
class FutureRetrieveRequest(WireModel):
    """Body of POST /api/v1/retrieve_future (`allow_metadata_only`: the answer may announce
    a large result's size instead of carrying it)."""

    request_id: RequestID
    allow_metadata_only: bool = False


@wire
@attrs.define(kw_only=True)
class TryAgainResponse(WireModel):
    """Poll answer while the result is pending (HTTP 408, or 200 with this type).

    `type` is always sent: the client recognises the pending answer by it.
    """

    _always_sent: ClassVar[frozenset[str]] = frozenset({"type"})
    type: Literal["try_again"] = "try_again"
    request_id: RequestID
    queue_state: str | None = None
    queue_state_reason: str | None = None


def _category(value: object) -> RequestErrorCategory:
    return RequestErrorCategory.parse(value)


@wire
@attrs.define(kw_only=True)
class RequestFailedResponse(WireModel):
    """Poll answer of a failed request; an unknown category reads as Unknown."""

    error: str
    category: RequestErrorCategory = attrs.field(
        default=RequestErrorCategory.Unknown, converter=_category
    )


# What a poll may answer (declared for completeness; results are read by the expected type).
FutureRetrieveResponse = Union[
    TryAgainResponse,
    ForwardBackwardOutput,
    OptimStepResponse,
    SaveWeightsResponse,
    LoadWeightsResponse,
    SaveWeightsForSamplerResponse,
    SaveWeightsExternalResponse,
    CreateModelResponse,
    UnloadModelResponse,
    RequestFailedResponse,
]
