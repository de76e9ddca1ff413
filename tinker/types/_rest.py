"""REST resources: training runs, checkpoints, sessions, samplers, weights info, copies,
external-weights URLs and the caller's identity."""

from __future__ import annotations

import datetime as dt
from typing import Any

import attrs

from tinker.types._base import WireModel, wire
from tinker.types._optimizers import AdamOptimizerConfig, OptimizerConfig
from tinker.types._paths import CheckpointType

__all__ = [
    "Checkpoint",
    "CheckpointArchiveUrlResponse",
    "CheckpointsListResponse",
    "CopyWeightsRequest",
    "CopyWeightsResponse",
    "Cursor",
    "ExternalWeightsUrlsResponse",
    "GetSamplerResponse",
    "GetSessionResponse",
    "ListSessionsResponse",
    "TrainingRun",
    "TrainingRunsResponse",
    "WeightsInfoRequest",
    "WeightsInfoResponse",
    "WhoamiResponse",
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
    user_metadata: dict[str, str] | None = None
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
    """What is needed to load a checkpoint: its base model, optimizer and LoRA settings."""

    base_model: str
    optimizer_config: OptimizerConfig = attrs.Factory(AdamOptimizerConfig)
    is_lora: bool
    lora_rank: int | None = None
    train_unembed: bool | None = None
    train_mlp: bool | None = None
    train_attn: bool | None = None


@wire
@attrs.define(kw_only=True)
class GetSessionResponse(WireModel):
    """The training runs and samplers of one session, and its metadata and name."""

    training_run_ids: list[str]
    sampler_ids: list[str]
    user_metadata: dict[str, Any] | None = None
    display_name: str | None = None


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


@wire
@attrs.define(kw_only=True)
class ExternalWeightsUrlsResponse(WireModel):
    """Signed download URLs of an external-weights checkpoint (relative file path -> URL)."""

    urls: dict[str, str]
    expires: dt.datetime


@wire
@attrs.frozen(kw_only=True)
class CopyWeightsRequest(WireModel):
    """Body of POST /api/v1/copy_weights: copy a checkpoint into a project (or the project of
    a session); storage is shared and the copy belongs to a new, untrainable run."""

    session_id: str | None = None
    model_seq_id: int | None = None
    destination_project_id: str | None = None
    source_path: str
    ttl_seconds: int | None = None
    weights_access_token: str | None = None


@wire
@attrs.define(kw_only=True)
class CopyWeightsResponse(WireModel):
    """Answer of copy_weights: the copy's tinker:// path."""

    tinker_path: str


@wire
@attrs.define(kw_only=True)
class WhoamiResponse(WireModel):
    """Who the credential belongs to (from the token's claims)."""

    user_urn: str
    org_urn: str
    email: str | None = None
