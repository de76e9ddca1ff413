"""Sampling requests and results: sampling sessions, SamplingParams, asample."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._inputs import ModelInput

__all__ = [
    "CreateSamplingSessionRequest",
    "CreateSamplingSessionResponse",
    "SampleRequest",
    "SampleResponse",
    "SampledSequence",
    "SamplingParams",
    "StopReason",
]

StopReason = Literal["length", "stop"]


@wire
@attrs.frozen(kw_only=True)
class SamplingParams(WireModel):
    """How to sample; only the fields set are sent (the server applies the defaults)."""

    max_tokens: int | None = None
    seed: int | None = None
    stop: str | Sequence[str] | Sequence[int] | None = None
    temperature: float = 1
    top_k: int = -1
    top_p: float = 1

    def _validate(self) -> None:
        if self.max_tokens is not None and self.max_tokens < 0:
            raise ValueError(f"SamplingParams.max_tokens: must be >= 0, got {self.max_tokens}")
        if not self.temperature >= 0:  # NaN too
            raise ValueError(f"SamplingParams.temperature: must be >= 0, got {self.temperature}")
        if not 0 <= self.top_p <= 1:
            raise ValueError(f"SamplingParams.top_p: must be in [0, 1], got {self.top_p}")
        if self.top_k < -1:
            raise ValueError(
                f"SamplingParams.top_k: must be -1 (no limit) or >= 0, got {self.top_k}"
            )


@wire
@attrs.frozen(kw_only=True)
class CreateSamplingSessionRequest(WireModel):
    """Body of POST /api/v1/create_sampling_session."""

    session_id: str
    sampling_session_seq_id: int
    base_model: str | None = None
    model_path: str | None = None
    type: Literal["create_sampling_session"] = "create_sampling_session"


@wire
@attrs.define(kw_only=True)
class CreateSamplingSessionResponse(WireModel):
    """Answer of create_sampling_session: the sampler's id."""

    type: Literal["create_sampling_session"] = "create_sampling_session"
    sampling_session_id: str


@wire
@attrs.frozen(kw_only=True)
class SampleRequest(WireModel):
    """Body of POST /api/v1/asample."""

    num_samples: int = 1
    prompt: ModelInput
    sampling_params: SamplingParams
    base_model: str | None = None
    model_path: str | None = None
    sampling_session_id: str | None = None
    seq_id: int | None = None
    prompt_logprobs: bool | None = None
    topk_prompt_logprobs: int = 0
    type: Literal["sample"] = "sample"

    def _validate(self) -> None:
        if self.num_samples < 1:
            raise ValueError(f"SampleRequest.num_samples: must be >= 1, got {self.num_samples}")
        if self.topk_prompt_logprobs < 0:
            raise ValueError(
                f"SampleRequest.topk_prompt_logprobs: must be >= 0, got {self.topk_prompt_logprobs}"
            )


@wire
@attrs.define(kw_only=True)
class SampledSequence(WireModel):
    """One generated continuation (prompt not included)."""

    stop_reason: StopReason
    tokens: list[int]
    logprobs: list[float] | None = None


@wire
@attrs.define(kw_only=True)
class SampleResponse(WireModel):
    """Result of asample: the sequences, and prompt logprobs when asked for."""

    sequences: list[SampledSequence]
    type: Literal["sample"] = "sample"
    prompt_logprobs: list[float | None] | None = None
    topk_prompt_logprobs: list[list[tuple[int, float]] | None] | None = None
