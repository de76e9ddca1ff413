"""REST resources: training runs, checkpoints, sessions, samplers, weights info."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._paths import CheckpointType

__all__ = [
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointsListResponse",
    "Cursor",
    "GetSamplerResponse",
    "GetSessionResponse",
    "ListSessionsResponse",
    "TrainingRun",
    "TrainingRunsResponse",
    "WeightsInfoRequest",
    "WeightsInfoResponse",
]


@wire
@attrs.define(kw_only=True)
class Cursor(WireModel):
    """Offset/limit paging state; there is a next page while offset + limit < total_count."""

    offset: int
    limit: int
    total_count: int


@wire
@attrs.define(kw_only=True)
class Checkpoint(WireModel):
    """A saved checkpoint (training state or sampler weights)."""

    checkpoint_id: str
    checkpoint_type: CheckpointType
    time: dt.datetime
    tinker_path: str
    size_bytes: int | None = None
    public: bool = False
    expires_at: dt.datetime | None = None


@wire
@attrs.define(kw_only=True)
class CheckpointsListResponse(WireModel):
    """A page of checkpoints."""

    checkpoints: list[Checkpoint]
    cursor: Cursor | None = None


@wire
@attrs.define(kw_only=True)
class TrainingRun(WireModel):
    """A training run (a LoRA model being trained)."""

    training_run_id: str
    base_model: str
    model_owner: str
    is_lora: bool
    corrupted: bool = False
    lora_rank: int | None = None
    last_request_time: dt.datetime
    last_checkpoint: Checkpoint | None = None
    last_sampler_checkpoint: Checkpoint | None = None
    user_metadata: dict[str, Any] | None = None


@wire
@attrs.define(kw_only=True)
class TrainingRunsResponse(WireModel):
    """A page of training runs."""

    training_runs: list[TrainingRun]
    cursor: Cursor


@wire
@attrs.define(kw_only=True)
class CheckpointArchiveUrlResponse(WireModel):
    """Where to download a checkpoint archive, and until when the link works."""

    url: str
    expires: dt.datetime


@wire
@attrs.frozen(kw_only=True)
class WeightsInfoRequest(WireModel):
    """Body of POST /api/v1/weights_info."""

    tinker_path: str


@wire
@attrs.define(kw_only=True)
class WeightsInfoResponse(WireModel):
    """What is needed to load a checkpoint: its base model and LoRA rank."""

    base_model: str
    is_lora: bool
    lora_rank: int | None = None


@wire
@attrs.define(kw_only=True)
class GetSessionResponse(WireModel):
    """The training runs and samplers of one session."""

    training_run_ids: list[str]
    sampler_ids: list[str]


@wire
@attrs.define(kw_only=True)
class ListSessionsResponse(WireModel):
    """A page of session ids."""

    sessions: list[str]


@wire
@attrs.define(kw_only=True)
class GetSamplerResponse(WireModel):
    """A sampler (sampling session): its base model and checkpoint path."""

    sampler_id: str
    base_model: str
    model_path: str | None = None
